import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { substituteDevice } from '../acl/index.js';
import { CredbrokerError, UsageError } from '../errors/index.js';
import type { DeviceId, Jti, Kid, Profile, Settings } from '../registry/index.js';
import { formatDuration } from '../util/duration.js';
import type { AccessTokenClaims } from './claims.js';
import type { Keyring } from './keyring.js';

export interface MintedToken {
  readonly token: string;
  readonly jti: Jti;
  readonly kid: Kid;
  /** ms since epoch */
  readonly issuedAt: number;
  /** ms since epoch */
  readonly expiresAt: number;
}

export interface MintRequest {
  readonly deviceId: DeviceId;
  readonly profile: Pick<Profile, 'publish' | 'subscribe'>;
  readonly ttlMs: number;
  readonly now?: number;
}

/** @throws UsageError `ERR_TTL_TOO_LONG` above the registry's cap (default 24 h). */
export function checkTtl(ttlMs: number, settings: Pick<Settings, 'maxTokenTtlMs'>): void {
  if (ttlMs > settings.maxTokenTtlMs) {
    throw new UsageError(`token lifetime ${formatDuration(ttlMs)} is above the cap of ${formatDuration(settings.maxTokenTtlMs)}`, 'ERR_TTL_TOO_LONG');
  }
}

/**
 * Mints an access token for a device: ES256 or EdDSA by the active key, with the
 * profile's ACL substituted for this device. The caller records the jti.
 *
 * @example
 * const t = await mintAccessToken(keyring, settings, { deviceId, profile, ttlMs: 3_600_000 });
 * registry.tokens.record({ jti: t.jti, deviceId, kid: t.kid, issuedAt: t.issuedAt, expiresAt: t.expiresAt });
 */
export async function mintAccessToken(keyring: Keyring, settings: Settings, req: MintRequest): Promise<MintedToken> {
  checkTtl(req.ttlMs, settings);
  const signer = keyring.signer;
  if (!signer) throw new CredbrokerError('ERR_REGISTRY', 'the registry has no active signing key: run credbroker keys rotate');
  const now = req.now ?? Date.now();
  const iat = Math.floor(now / 1000);
  const exp = iat + Math.ceil(req.ttlMs / 1000);
  const jti = randomBytes(16).toString('base64url') as Jti;
  const acl = {
    pub: req.profile.publish.map((p) => substituteDevice(p, req.deviceId)),
    sub: req.profile.subscribe.map((p) => substituteDevice(p, req.deviceId)),
  };
  const claims: AccessTokenClaims = { iss: settings.issuer, aud: settings.audience, sub: req.deviceId, iat, exp, jti, acl };
  const token = await new SignJWT({ ...claims, acl: { pub: [...acl.pub], sub: [...acl.sub] } })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })
    .sign(signer.privateKey);
  return { token, jti, kid: signer.kid, issuedAt: iat * 1000, expiresAt: exp * 1000 };
}
