import { RegistryError } from '../errors/index.js';
import type { Actor, DeviceId, Jti, SyncRegistry } from '../registry/index.js';

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
export function revokeDevices(reg: SyncRegistry, ids: readonly DeviceId[], reason: string, actor: Actor = 'cli', now = Date.now(), opts: { keepRetained?: boolean } = {}): RevokeResult[] {
  const retainedCleared = !opts.keepRetained;
  return reg.writeDurably(() =>
    ids.map((id) => {
      reg.devices.require(id);
      const changed = reg.devices.revoke(id, reason, now);
      const jtis = reg.tokens.revokeAllOf(id, now);
      reg.refresh.revokeAllOf(id);
      if (changed) {
        reg.changes.append('device_revoked', id, null, now);
        reg.audit.append(actor, 'device.revoke', id, { reason, tokensRevoked: jtis.length, retained: retainedCleared ? 'cleared' : 'kept' }, now);
      }
      if (retainedCleared) reg.changes.append('retained_clear', id, null, now);
      return { deviceId: id, changed, tokensRevoked: jtis.length, retainedCleared };
    }),
  );
}

/**
 * Revokes one access token by jti, with its whole family: every token obtained
 * by renewal from it, and the tokens it was itself renewed from. One change-feed
 * entry names the jti; the broker reads the family from the registry and closes
 * the session holding any of its tokens. Fsynced before it returns.
 * @throws RegistryError `ERR_TOKEN_NOT_FOUND`
 */
export function revokeToken(reg: SyncRegistry, jti: Jti, actor: Actor = 'cli', now = Date.now()): { deviceId: DeviceId; changed: boolean; familyRevoked: number } {
  return reg.writeDurably(() => {
    const token = reg.tokens.get(jti);
    if (!token) throw new RegistryError('ERR_TOKEN_NOT_FOUND', `no token with jti "${jti}" (see: credbroker show DEVICE)`);
    const revoked = reg.tokens.revokeFamily(token.family, now);
    const changed = revoked.length > 0;
    if (changed) {
      reg.changes.append('token_revoked', token.deviceId, jti, now);
      reg.audit.append(actor, 'token.revoke', token.deviceId, { jti, family: token.family, tokensRevoked: revoked.length }, now);
    }
    return { deviceId: token.deviceId, changed, familyRevoked: revoked.length };
  });
}

/**
 * Re-enables a revoked device. Its old tokens stay dead (they were revoked, and
 * any token issued before now is refused); it needs a new token (`credbroker token`).
 */
export function restoreDevice(reg: SyncRegistry, id: DeviceId, now = Date.now()): boolean {
  return reg.write(() => {
    reg.devices.require(id);
    const changed = reg.devices.restore(id, now);
    if (changed) {
      reg.changes.append('device_restored', id, null, now);
      reg.audit.append('cli', 'device.restore', id, null, now);
    }
    return changed;
  });
}
