import { compileAcl } from '../acl/index.js';
import { CredentialError, RegistryError, UsageError } from '../errors/index.js';
import { authenticateClaim } from '../operations/index.js';
import { claimTopics } from '../protocol/claim.js';
import { describe, isClaimName, isDeviceId, type ClaimName, type DeviceId } from '../registry/index.js';
import type { BrokerContext } from './context.js';
import { CLAIM_SESSION_MS } from './limits.js';
import type { Session } from './session.js';

/**
 * The CONNECT of a claim session (SPEC "Provisioning by claim"): client id =
 * the device id to claim, user name `claim:<NAME>`, password = the claim
 * credential. Unknown, malformed or expired credential: CONNACK 4 (from
 * authenticateClaim); revoked claim, or a client id that is already a device
 * or has a session here: CONNACK 5, so that a claim session never takes over a
 * live session with that client id (and a cloned claim credential never a
 * provisioned device). A client id that is no device id: CONNACK 2.
 *
 * The session may publish only `$claims/{id}/provision` and subscribe only
 * `$claims/{id}/provision/+`; it ends CLAIM_SESSION_MS after the CONNECT at the
 * latest (the deadline wheel, with the leeway taken off).
 */
export async function claimSession(ctx: BrokerContext, clientId: string, claimName: string, secret: string): Promise<Session> {
  if (!isDeviceId(clientId)) throw new UsageError(`client id ${describe(clientId)} is not a device id`, 'ERR_INVALID_DEVICE_ID');
  if (!isClaimName(claimName)) throw new CredentialError('ERR_CLAIM_UNKNOWN', 'unknown claim');
  const { reg } = ctx.issuer;
  const claim = await authenticateClaim(reg, claimName as ClaimName, secret);
  if ((await reg.devices.get(clientId)) || ctx.sessions.clientOf(clientId)) throw new RegistryError('ERR_DEVICE_EXISTS', 'id_exists');
  const topics = claimTopics(clientId);
  const now = Date.now();
  return {
    deviceId: clientId as DeviceId, kind: 'claim', claim: claim.name, jti: null, kid: null, connectedAt: now,
    expiresAt: now + CLAIM_SESSION_MS - ctx.config.leewaySec * 1000,
    refreshHash: null, ended: null, checkDelivery: false,
    acl: compileAcl({ pub: [topics.provision], sub: [topics.filter] }),
  };
}
