import type { DeviceId } from '../registry/index.js';
import { hashRefreshCredential, newRefreshCredential } from '../tokens/index.js';
import type { DeviceCredentials, Issuer } from '../provisioning/index.js';
import { mintForDevice } from './token.js';

/**
 * A complete new credentials set for an existing, active device: an access token
 * and a new refresh credential (every older refresh credential of the device is
 * revoked). What a restored device needs to survive a long offline spell again:
 * `revoke` killed its refresh credential, and `token` alone gives none.
 * @throws RegistryError `ERR_DEVICE_NOT_FOUND` | `ERR_DEVICE_REVOKED`
 */
export async function reissueCredentials(issuer: Issuer, id: DeviceId, opts: { brokerUrl: string; ttlMs?: number; now?: number }): Promise<DeviceCredentials> {
  const { reg } = issuer;
  const now = opts.now ?? Date.now();
  const { device, token } = await mintForDevice(issuer, id, { ttlMs: opts.ttlMs, now });
  const refresh = newRefreshCredential();
  await reg.transaction(async (tx) => {
    await tx.refresh.revokeAllOf(id);
    await tx.refresh.add(hashRefreshCredential(refresh), id, now, device.credentialExpiresAt);
    await tx.tokens.record({ jti: token.jti, deviceId: id, kid: token.kid, issuedAt: token.issuedAt, expiresAt: token.expiresAt });
    await tx.audit.append('cli', 'device.reissue', id, { jti: token.jti }, now);
  });
  return {
    deviceId: id,
    brokerUrl: opts.brokerUrl,
    accessToken: token.token,
    accessTokenExpiresAt: new Date(token.expiresAt).toISOString(),
    refreshCredential: refresh,
    refreshCredentialExpiresAt: new Date(device.credentialExpiresAt).toISOString(),
  };
}
