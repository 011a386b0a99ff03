import { CredentialError, RegistryError } from '../errors/index.js';
import type { DeviceId, Jti } from '../registry/index.js';
import { mintAccessToken, type MintedToken } from '../tokens/index.js';
import type { Issuer } from '../provisioning/index.js';
import type { Actor, Device, Profile } from '../registry/index.js';

/** A device and its profile the caller has just read (the broker's renewal): not read again, a registry round trip each. */
export interface DeviceRead { readonly device: Device; readonly profile: Profile }

/**
 * Mints (without recording) an access token for an existing, active device.
 * @throws RegistryError `ERR_DEVICE_NOT_FOUND` | `ERR_DEVICE_REVOKED`; UsageError `ERR_TTL_TOO_LONG`
 */
export async function mintForDevice(issuer: Issuer, id: DeviceId, opts: { ttlMs?: number; now: number; read?: DeviceRead }): Promise<{ device: Device; token: MintedToken }> {
  const device = opts.read?.device ?? await issuer.reg.devices.require(id);
  if (device.status === 'revoked') throw new RegistryError('ERR_DEVICE_REVOKED', `device "${id}" is revoked (restore it first: credbroker restore ${id})`);
  const profile = opts.read?.profile ?? await issuer.reg.profiles.require(device.profile);
  const token = await mintAccessToken(issuer.keyring, issuer.settings, { deviceId: id, profile, ttlMs: opts.ttlMs ?? profile.tokenTtlMs, now: opts.now });
  return { device, token };
}

/**
 * Mints a fresh access token for an existing, active device and records it.
 * Used by `credbroker token` and by the broker's renewal responder. A renewal
 * names the token it replaces (`renews`): the new token joins that token's
 * family, and is refused if that token was revoked meanwhile (checked in the
 * same write transaction as the record, so a `revoke --token` that commits
 * during the signing cannot leave a live member of a revoked family behind).
 * @throws RegistryError `ERR_DEVICE_NOT_FOUND` | `ERR_DEVICE_REVOKED`; UsageError `ERR_TTL_TOO_LONG`;
 *   CredentialError `ERR_TOKEN_REVOKED` (the replaced token was revoked)
 */
export async function issueAccessToken(issuer: Issuer, id: DeviceId, opts: { ttlMs?: number; actor?: Actor; action?: string; now?: number; renews?: Jti; read?: DeviceRead } = {}): Promise<MintedToken> {
  const { reg } = issuer;
  const now = opts.now ?? Date.now();
  const { token } = await mintForDevice(issuer, id, { ttlMs: opts.ttlMs, now, read: opts.read });
  await reg.transaction(async (tx) => {
    let family: Jti | undefined;
    if (opts.renews) {
      const replaced = await tx.tokens.get(opts.renews);
      if (replaced?.revokedAt != null) throw new CredentialError('ERR_TOKEN_REVOKED', 'token_revoked');
      family = replaced?.family ?? opts.renews;
    }
    await tx.tokens.record({ jti: token.jti, deviceId: id, kid: token.kid, issuedAt: token.issuedAt, expiresAt: token.expiresAt, family });
    await tx.audit.append(opts.actor ?? 'cli', opts.action ?? 'token.issue', id, { jti: token.jti, expiresAt: token.expiresAt, ...(family && { family }) }, now);
  });
  return token;
}
