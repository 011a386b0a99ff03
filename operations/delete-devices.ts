import { RegistryError } from '../errors/index.js';
import type { Actor, Device, DeviceId, Stores } from '../registry/index.js';

/**
 * How long after its expiry a token still counts as live: above any broker's
 * clock leeway, and what the broker's own deny list keeps (RevocationState.prune).
 */
export const TOKEN_GRACE_MS = 60_000;

export interface DeleteResult {
  readonly deviceId: DeviceId;
  readonly profile: string;
}

/**
 * `credbroker devices delete`: removes revoked devices from the registry — the
 * device, its token records and refresh credentials — in one transaction, all or
 * nothing. The audit log keeps their history, and a `device.delete` row each.
 *
 * Only a revoked device whose tokens have all expired: a broker started later
 * builds its deny list from the registry, and would otherwise accept a deleted
 * device's token that is still within its lifetime. A running broker learns of
 * the deletion from the change feed and forgets the device (its id may be
 * provisioned again).
 * @throws RegistryError `ERR_DEVICE_NOT_FOUND` | `ERR_DEVICE_NOT_REVOKED` | `ERR_DEVICE_TOKENS_LIVE`
 */
export function deleteDevices(reg: Stores, ids: readonly DeviceId[], actor: Actor = 'cli', now = Date.now()): Promise<DeleteResult[]> {
  return reg.transaction(async (tx) => {
    const out: DeleteResult[] = [];
    for (const id of ids) out.push(await deleteOne(tx, id, actor, now));
    return out;
  });
}

async function deleteOne(tx: Stores, id: DeviceId, actor: Actor, now: number): Promise<DeleteResult> {
  const d = await tx.devices.require(id);
  if (d.status !== 'revoked') {
    throw new RegistryError('ERR_DEVICE_NOT_REVOKED', `device "${id}" is active: only a revoked device can be deleted (credbroker revoke ${id} first); nothing was deleted`);
  }
  const lastExp = await tx.tokens.lastExpiryOfDevice(id);
  if (lastExp !== null && lastExp + TOKEN_GRACE_MS > now) {
    const at = new Date(lastExp + TOKEN_GRACE_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');
    throw new RegistryError('ERR_DEVICE_TOKENS_LIVE', `device "${id}" has a revoked token that would still be within its lifetime until ${at}: delete it after that (a broker restarted meanwhile must keep refusing it); nothing was deleted`);
  }
  return remove(tx, d, actor, now);
}

/**
 * Removes the devices a simulation provisioned, when its run ends, tokens still
 * live or not: only the simulation process ever held them. A running broker
 * closes any session left and refuses their tokens (the `device_deleted` change).
 * Devices not marked as simulation devices, or already gone, are left alone.
 * @returns the ids removed
 */
export function removeSimulationDevices(reg: Stores, ids: readonly string[], now = Date.now()): Promise<DeviceId[]> {
  return reg.transaction(async (tx) => {
    const removed: DeviceId[] = [];
    for (const id of ids) {
      const d = await tx.devices.get(id);
      if (!d?.simulation) continue;
      await remove(tx, d, 'cli', now, false);
      removed.push(d.id);
    }
    // One summary row for the run, not one per device.
    if (removed.length) await tx.audit.append('cli', 'simulation.cleanup', null, { devices: removed.length }, now);
    return removed;
  });
}

/** Deletes one device's rows and tells the broker through the change feed. */
async function remove(tx: Stores, d: Device, actor: Actor, now: number, audit = true): Promise<DeleteResult> {
  await tx.refresh.deleteAllOf(d.id);
  await tx.tokens.deleteAllOf(d.id);
  await tx.devices.delete(d.id);
  await tx.changes.append('device_deleted', d.id, null, now);
  if (audit) await tx.audit.append(actor, 'device.delete', d.id, { profile: d.profile, revokedAt: d.revokedAt }, now);
  return { deviceId: d.id, profile: d.profile };
}
