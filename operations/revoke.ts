import { RegistryError } from '../errors/index.js';
import type { Actor, DeviceId, Jti, Stores } from '../registry/index.js';

export interface RevokeResult {
  readonly deviceId: DeviceId;
  /** False when the device was already revoked (nothing changed). */
  readonly changed: boolean;
  readonly tokensRevoked: number;
  /** Whether the broker was asked to delete the retained messages the device published. */
  readonly retainedCleared: boolean;
}

/**
 * Revokes devices in one transaction: status, every live token and refresh
 * credential, an audit row and a change-feed entry each, fsynced before it
 * returns. The broker (another process) picks the change up from the feed and
 * closes their sessions. Unless `keepRetained`, a `retained_clear` entry per
 * device asks the broker to delete the retained messages the device published
 * (they live in the broker, not the registry): a stolen device's last words must
 * not keep reaching every new subscriber. Given for a device already revoked, it
 * clears them then.
 * @throws RegistryError `ERR_DEVICE_NOT_FOUND` (nothing is revoked then)
 */
export function revokeDevices(reg: Stores, ids: readonly DeviceId[], reason: string, actor: Actor = 'cli', now = Date.now(), opts: { keepRetained?: boolean } = {}): Promise<RevokeResult[]> {
  const retainedCleared = !opts.keepRetained;
  return reg.transaction(async (tx) => {
    const out: RevokeResult[] = [];
    for (const id of ids) {
      await tx.devices.require(id);
      const changed = await tx.devices.revoke(id, reason, now);
      const jtis = await tx.tokens.revokeAllOf(id, now);
      await tx.refresh.revokeAllOf(id);
      if (changed) {
        await tx.changes.append('device_revoked', id, null, now);
        await tx.audit.append(actor, 'device.revoke', id, { reason, tokensRevoked: jtis.length, retained: retainedCleared ? 'cleared' : 'kept' }, now);
      }
      if (retainedCleared) await tx.changes.append('retained_clear', id, null, now);
      out.push({ deviceId: id, changed, tokensRevoked: jtis.length, retainedCleared });
    }
    return out;
  }, { durable: true });
}

/**
 * Revokes one access token by jti, with its whole family: every token obtained
 * by renewal from it, and the tokens it was itself renewed from. One change-feed
 * entry names the jti; the broker reads the family from the registry and closes
 * the session holding any of its tokens. Fsynced before it returns.
 * @throws RegistryError `ERR_TOKEN_NOT_FOUND`
 */
export function revokeToken(reg: Stores, jti: Jti, actor: Actor = 'cli', now = Date.now()): Promise<{ deviceId: DeviceId; changed: boolean; familyRevoked: number; revoked: Jti[] }> {
  return reg.transaction(async (tx) => {
    const token = await tx.tokens.get(jti);
    if (!token) throw new RegistryError('ERR_TOKEN_NOT_FOUND', `no token with jti "${jti}" (see: credbroker show DEVICE)`);
    const revoked = await tx.tokens.revokeFamily(token.family, now);
    const changed = revoked.length > 0;
    if (changed) {
      await tx.changes.append('token_revoked', token.deviceId, jti, now);
      await tx.audit.append(actor, 'token.revoke', token.deviceId, { jti, family: token.family, tokensRevoked: revoked.length }, now);
    }
    return { deviceId: token.deviceId, changed, familyRevoked: revoked.length, revoked: revoked.map((r) => r.jti) };
  }, { durable: true });
}

/**
 * Re-enables a revoked device. Its old tokens stay dead (they were revoked, and
 * any token issued before now is refused); it needs a new token (`credbroker token`).
 */
export function restoreDevice(reg: Stores, id: DeviceId, actor: Actor = 'cli', now = Date.now()): Promise<boolean> {
  return reg.transaction(async (tx) => {
    await tx.devices.require(id);
    const changed = await tx.devices.restore(id, now);
    if (changed) {
      await tx.changes.append('device_restored', id, null, now);
      await tx.audit.append(actor, 'device.restore', id, null, now);
    }
    return changed;
  });
}
