import { RegistryError } from '../errors/index.js';
import type { SyncRegistry } from '../registry/index.js';

/**
 * `credbroker profile delete`: removes a profile that no device uses (a device's
 * renewals mint tokens from its profile). Audited as `profile.delete`.
 * @throws RegistryError `ERR_PROFILE_NOT_FOUND` | `ERR_PROFILE_IN_USE`
 */
export function deleteProfile(reg: SyncRegistry, name: string, now = Date.now()): void {
  reg.write(() => {
    const p = reg.profiles.require(name);
    const users = reg.devices.countByProfile().get(p.name) ?? 0;
    if (users > 0) {
      throw new RegistryError('ERR_PROFILE_IN_USE', `profile "${p.name}" is used by ${users} device(s) (credbroker devices --profile ${p.name}): delete or re-provision them first`);
    }
    const claims = reg.claims.usingProfile(p.name);
    if (claims.length > 0) {
      throw new RegistryError('ERR_PROFILE_IN_USE', `profile "${p.name}" is used by claim(s) ${claims.join(', ')}: devices still provision under it (credbroker claim list)`);
    }
    reg.profiles.delete(p.name);
    reg.audit.append('cli', 'profile.delete', null, { profile: p.name, publish: p.publish, subscribe: p.subscribe, tokenTtlMs: p.tokenTtlMs }, now);
  });
}
