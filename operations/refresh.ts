import { CredentialError } from '../errors/index.js';
import type { DeviceId, RefreshRecord, Stores } from '../registry/index.js';
import { hashRefreshCredential, newRefreshCredential, parseRefreshCredential, type RefreshCredential } from '../tokens/index.js';
import type { Issuer } from '../provisioning/index.js';
import { revokeDevices } from './revoke.js';

/**
 * Checks a refresh credential presented by `deviceId` (shape and checksum first,
 * without touching the database). Presenting a superseded credential is a theft
 * signal: the device is revoked and a theft event audited before refusing. So is
 * presenting the `previous` one (rotated out, its successor not used yet) more
 * than `graceMs` after its rotation: a device that lost the answer comes back
 * within minutes, while an online device may never use its successor, which
 * would leave a stolen copy good for the credential's whole lifetime.
 *
 * @throws CredentialError ERR_REFRESH_MALFORMED | ERR_REFRESH_UNKNOWN | ERR_IDENTITY_MISMATCH |
 *   ERR_REFRESH_REPLAYED | ERR_TOKEN_REVOKED | ERR_CREDENTIAL_EXPIRED
 */
export async function checkRefreshCredential(issuer: Issuer, text: string, deviceId: DeviceId, opts: { graceMs?: number; now?: number } = {}): Promise<RefreshRecord> {
  const now = opts.now ?? Date.now();
  const hash = hashRefreshCredential(parseRefreshCredential(text));
  const rec = await issuer.reg.refresh.find(hash);
  if (!rec) throw new CredentialError('ERR_REFRESH_UNKNOWN', 'refresh credential unknown');
  if (rec.deviceId !== deviceId) throw new CredentialError('ERR_IDENTITY_MISMATCH', 'refresh credential belongs to another device');
  const graceOver = rec.state === 'previous' && rec.usedAt !== null && now - rec.usedAt > (opts.graceMs ?? Infinity);
  if (rec.state === 'superseded' || graceOver) {
    await reportRefreshReplay(issuer, deviceId, 'connect', now, graceOver ? 'grace_expired' : 'superseded');
    throw new CredentialError('ERR_REFRESH_REPLAYED', 'refresh credential was already rotated: device revoked');
  }
  const device = await issuer.reg.devices.require(deviceId);
  if (rec.state === 'revoked' || device.status === 'revoked') throw new CredentialError('ERR_TOKEN_REVOKED', 'device is revoked');
  if (rec.expiresAt <= now || device.credentialExpiresAt <= now) throw new CredentialError('ERR_CREDENTIAL_EXPIRED', 'device credential lifetime is over');
  return rec;
}

/**
 * The theft response: audit the replay and revoke the device, its tokens and
 * credentials. `credential` says what was presented: one already superseded, or
 * the previous one past its grace window.
 */
export async function reportRefreshReplay(issuer: Issuer, deviceId: DeviceId, seenAt: 'connect' | 'renewal', now = Date.now(), credential: 'superseded' | 'grace_expired' = 'superseded'): Promise<void> {
  await issuer.reg.transaction(async (tx) => {
    await tx.audit.append('broker', 'security.refresh_replay', deviceId, { event: 'theft', seenAt, credential, response: 'device revoked' }, now);
    await revokeDevices(tx, [deviceId], 'refresh credential replayed (possible theft)', 'broker', now);
  }, { durable: true });
}

export interface Rotated {
  readonly credential: RefreshCredential;
  readonly hash: string;
  readonly expiresAt: number;
}

/**
 * Rotates on use. Using the `current` credential makes it `previous` (still good
 * until its successor is used once, within the grace window from now: its
 * `used_at`) and retires any older `previous`. Using the
 * `previous` one means the device lost the answer: it gets a new `current`, and
 * the never-used one it replaces is superseded. `tx` is the transaction in which
 * `used` was read with `refresh.findForUpdate`: the check and the rotation are one
 * step, so two renewals racing with one credential cannot both rotate it.
 */
export async function rotateRefreshCredential(tx: Stores, used: RefreshRecord, now = Date.now()): Promise<Rotated> {
  const credential = newRefreshCredential();
  const hash = hashRefreshCredential(credential);
  const expiresAt = (await tx.devices.require(used.deviceId)).credentialExpiresAt;
  await tx.refresh.add(hash, used.deviceId, now, expiresAt);
  if (used.state === 'current') {
    await tx.refresh.supersede(used.deviceId, 'previous', used.hash);
    await tx.refresh.setState(used.hash, 'previous', now);
  } else {
    await tx.refresh.supersede(used.deviceId, 'current', hash);
    await tx.refresh.setState(used.hash, 'previous', now);
  }
  return { credential, hash, expiresAt };
}
