import type { Actor, DeviceId, Stores } from '../registry/index.js';

export interface MoveResult {
  readonly deviceId: DeviceId;
  readonly from: string;
  /** False when the device was in that profile already. */
  readonly changed: boolean;
}

/**
 * `credbroker devices move ID... --profile NAME`: puts devices under another profile,
 * all or nothing, audited as `device.move`. Their live tokens are left alone: a token
 * carries the ACL it was minted with, and the device gets the new profile's ACL with
 * its next token (in-band renewal, within one token lifetime) without an outage. An
 * operator who needs it at once revokes the current tokens (`revoke --token JTI`): the
 * device comes back through its refresh credential under the new profile.
 * @throws RegistryError `ERR_PROFILE_NOT_FOUND` | `ERR_DEVICE_NOT_FOUND`
 */
export function moveDevices(reg: Stores, ids: readonly DeviceId[], profile: string, actor: Actor = 'cli', now = Date.now()): Promise<MoveResult[]> {
  return reg.transaction(async (tx) => {
    const to = await tx.profiles.require(profile);
    const out: MoveResult[] = [];
    for (const id of ids) {
      const d = await tx.devices.require(id);
      const changed = d.profile !== to.name;
      if (changed) {
        await tx.devices.setProfile(d.id, to.name);
        await tx.audit.append(actor, 'device.move', d.id, { from: d.profile, to: to.name }, now);
      }
      out.push({ deviceId: d.id, from: d.profile, changed });
    }
    return out;
  });
}
