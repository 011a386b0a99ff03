import type { Client } from 'aedes';
import { compileAcl } from '../acl/index.js';
import { CredentialError, RateLimitedError, RegistryError, UsageError } from '../errors/index.js';
import { authenticateClaim } from '../operations/index.js';
import { claimTopics } from '../protocol/claim.js';
import { describe, isClaimName, isDeviceId, type ClaimName, type DeviceId } from '../registry/index.js';
import { addressKey } from './address.js';
import type { ClaimLock } from './claim-locks.js';
import type { BrokerContext } from './context.js';
import { CLAIM_LOCK_MS, CLAIM_SESSION_MS } from './limits.js';
import type { Session } from './session.js';

/**
 * The CONNECT of a claim session (SPEC "Provisioning by claim"): client id =
 * the device id to claim, user name `claim:<NAME>`, password = the claim
 * credential. Unknown, malformed or expired credential: CONNACK 4 (from
 * authenticateClaim); revoked or exhausted claim, a client id that is already
 * a device or has a session here, or a claim session for the id open anywhere
 * (ctx.claimLocks): CONNACK 5, so that a claim session never takes over a live
 * session with that client id (and a cloned claim credential never a provisioned
 * device). Too many accepted claim CONNECTs (per claim, per address): CONNACK 3,
 * retry later. A client id that is no device id: CONNACK 2.
 *
 * The session may publish only `$claims/{id}/provision` and subscribe only
 * `$claims/{id}/provision/+`; it ends CLAIM_SESSION_MS after the CONNECT at the
 * latest (the deadline wheel, with the leeway taken off). Its id's lock is
 * released when its connection closes.
 */
export async function claimSession(ctx: BrokerContext, client: Client, claimName: string, secret: string, address: string): Promise<Session> {
  const clientId = client.id;
  if (!isDeviceId(clientId)) throw new UsageError(`client id ${describe(clientId)} is not a device id`, 'ERR_INVALID_DEVICE_ID');
  if (!isClaimName(claimName)) throw new CredentialError('ERR_CLAIM_UNKNOWN', 'unknown claim');
  const { reg } = ctx.issuer;
  const claim = await authenticateClaim(reg, claimName as ClaimName, secret);
  // Counted only for a proven credential, both buckets charged (as claim requests are): a held session costs memory until it ends.
  const claimOk = ctx.claimConnects.take(claim.name);
  const addressOk = ctx.claimConnectAddresses.take(addressKey(address));
  if (!claimOk || !addressOk) throw new RateLimitedError(`too many claim sessions ${claimOk ? 'from this address' : 'through this claim'}`);
  if ((await reg.devices.get(clientId)) || ctx.sessions.clientOf(clientId)) throw new RegistryError('ERR_DEVICE_EXISTS', 'id_exists');
  // Refused here rather than at the request: an exhausted claim must not hold sessions (nor block the ids of real units).
  if ((await reg.claims.used(claim.name)) >= claim.maxDevices) throw new RegistryError('ERR_CLAIM_QUOTA', 'the claim\'s device quota is used up');
  const lock = await ctx.claimLocks.take(clientId, CLAIM_LOCK_MS);
  if (!lock) throw new RegistryError('ERR_CLAIM_SESSION_HELD', 'a claim session for this id is open');
  releaseOnClose(client, lock);
  const topics = claimTopics(clientId);
  const now = Date.now();
  return {
    deviceId: clientId as DeviceId, kind: 'claim', claim: claim.name, jti: null, kid: null, connectedAt: now,
    expiresAt: now + CLAIM_SESSION_MS - ctx.config.leewaySec * 1000,
    refreshHash: null, ended: null, checkDelivery: false,
    acl: compileAcl({ pub: [topics.provision], sub: [topics.filter] }),
  };
}

/** The lock goes with the connection, however it ends (refused later, kicked, or gone before the CONNACK). */
function releaseOnClose(client: Client, lock: ClaimLock): void {
  const conn = client.conn as unknown as NodeJS.EventEmitter & { destroyed?: boolean };
  if (client.closed || conn.destroyed) return lock.release();
  conn.once('close', () => lock.release());
}
