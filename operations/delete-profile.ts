import { RegistryError } from '../errors/index.js';
import type { Stores } from '../registry/index.js';

/**
 * `credbroker profile delete`: removes a profile that no device uses (a device's
 * renewals mint tokens from its profile). Audited as `profile.delete`.
 * @throws RegistryError `ERR_PROFILE_NOT_FOUND` | `ERR_PROFILE_IN_USE`
 */
export function deleteProfile(reg: Stores, name: string, now = Date.now()): Promise<void> {
  return reg.transaction(async (tx) => {
    const p = await tx.profiles.require(name);
    const users = (await tx.devices.countByProfile()).get(p.name) ?? 0;
    if (users > 0) {
      throw new RegistryError('ERR_PROFILE_IN_USE', `profile "${p.name}" is used by ${users} device(s) (credbroker devices --profile ${p.name}): delete or re-provision them first`);
    }
    const claims = await tx.claims.usingProfile(p.name);
    if (claims.length > 0) {
      throw new RegistryError('ERR_PROFILE_IN_USE', `profile "${p.name}" is used by claim(s) ${claims.join(', ')}: devices still provision under it (credbroker claim list)`);
    }
    await tx.profiles.delete(p.name);
    await tx.audit.append('cli', 'profile.delete', null, { profile: p.name, publish: p.publish, subscribe: p.subscribe, tokenTtlMs: p.tokenTtlMs }, now);
  });
}
