import { CredentialError } from '../errors/index.js';
import type { Stores } from '../registry/index.js';
import type { AccessTokenClaims } from '../tokens/index.js';

/**
 * The registry half of accepting an access token (its spelling, signature, key
 * life and claims are checked by `verifyAccessToken` with `registryVerifyOptions`,
 * as the broker does): refused with `ERR_TOKEN_REVOKED` when
 * - its `jti` was revoked (`credbroker revoke --token`, or with its device),
 * - its device is revoked, or is not in the registry at all (fail closed),
 * - it was issued before the device's `tokensValidAfter` cut-off (set by `restore`:
 *   a restored device's old tokens stay dead).
 * The broker applies the same three rules from memory (fed by the change feed);
 * this function is the reference and what the CLI and tests use.
 *
 * @throws CredentialError `ERR_TOKEN_REVOKED`
 * @example
 * const { claims } = verifyAccessToken(token, keyring.verifyKeys, registryVerifyOptions(settings));
 * await checkTokenStatus(reg, claims);
 */
export async function checkTokenStatus(reg: Stores, claims: Pick<AccessTokenClaims, 'sub' | 'jti' | 'iat'>): Promise<void> {
  const device = await reg.devices.get(claims.sub);
  if (!device) throw new CredentialError('ERR_TOKEN_REVOKED', `token refused: device "${claims.sub}" is not in the registry`);
  if (device.status === 'revoked') throw new CredentialError('ERR_TOKEN_REVOKED', `token refused: device "${device.id}" is revoked`);
  if (claims.iat < device.tokensValidAfter) {
    throw new CredentialError('ERR_TOKEN_REVOKED', `token refused: issued before device "${device.id}" was restored`);
  }
  const token = await reg.tokens.get(claims.jti);
  if (token?.revokedAt != null) throw new CredentialError('ERR_TOKEN_REVOKED', `token refused: token ${claims.jti} is revoked`);
}
