import type { Client, PublishPacket } from 'aedes';
import { mayPublish } from '../acl/index.js';
import type { BrokerContext } from './context.js';
import { alreadyLogged } from './logged-error.js';
import type { ClaimResponder } from './claim.js';
import { claimTopics } from '../protocol/claim.js';
import { auditGrantDenied } from './grant-session.js';
import { retainedOwnerOf } from './grant-retained.js';
import type { RenewalResponder } from './renewal.js';
import { sessionOf } from './session.js';
import { renewTopicDevice } from '../protocol/renewal.js';

/** Where a dropped publish is sent: a topic no session may subscribe to. */
export const BLACK_HOLE = '$credbroker/dropped';

/**
 * The aedes `authorizePublish` hook: expiry and revocation are checked again
 * here (a timer can be late), then the ACL. Renewal requests are consumed here
 * and answered by the renewal responder; a claim session may publish its
 * provision request and nothing else (anything else closes it, whatever the
 * denied-publish policy). `$SYS` is never publishable (the ACL
 * refuses it whatever the patterns). Also called by aedes for the will on an
 * unclean disconnect: a kicked session's will is refused.
 */
export function createAuthorizePublish(ctx: BrokerContext, renewal: RenewalResponder, claims: ClaimResponder) {
  const deny = (client: Client, packet: PublishPacket, callback: (err?: Error | null) => void, why: string) => {
    ctx.metrics.aclDenials.inc({ action: 'publish' });
    const s = sessionOf(client);
    ctx.log.debug({ event: 'acl.publish_denied', device: s?.deviceId, why }, 'publish refused');
    if (s?.grant && !s.ended) auditGrantDenied(ctx, s, 'publish', packet.topic);
    if (ctx.config.deniedPublish === 'drop' && !s?.ended) return drop(packet, callback);
    if (s && !s.ended) ctx.sessions.kick(client, 'acl_violation');
    callback(alreadyLogged(new Error(`publish refused: ${why}`)));
  };
  return function authorizePublish(client: Client | null, packet: PublishPacket, callback: (err?: Error | null) => void): void {
    const s = sessionOf(client);
    if (!client || !s) return callback(new Error('no session'));
    // After a kick, which has its own log line.
    if (s.ended) return callback(alreadyLogged(new Error('session ended')));
    if (ctx.sessions.expired(s)) {
      ctx.sessions.kick(client, 'expired');
      return callback(alreadyLogged(new Error('token expired')));
    }
    if (!ctx.weaken.ignoreRevocations && ctx.revocation.isDeviceRevoked(s.deviceId)) {
      ctx.sessions.kick(client, 'device_revoked');
      return callback(alreadyLogged(new Error('device revoked')));
    }
    if (s.kind === 'claim') {
      if (packet.topic === claimTopics(s.deviceId).provision) {
        claims.handle(client, s, packet);
        return drop(packet, callback);
      }
      ctx.metrics.aclDenials.inc({ action: 'publish' });
      ctx.log.debug({ event: 'acl.publish_denied', device: s.deviceId, claim: s.claim }, 'claim session publish refused');
      ctx.sessions.kick(client, 'acl_violation');
      return callback(alreadyLogged(new Error('publish refused: claim session')));
    }
    const renewFor = renewTopicDevice(packet.topic);
    // A grant is never renewed: its renewal topic is one more topic outside its ACL.
    if (renewFor !== null && s.kind !== 'grant') {
      renewal.handle(client, s, renewFor, packet);
      return drop(packet, callback);
    }
    if (!ctx.weaken.skipPublishCheck && !mayPublish(s.acl, packet.topic)) return deny(client, packet, callback, 'not in ACL');
    if (packet.retain && keepWithinCaps(ctx, retainedOwnerOf(s), packet) && s.kind === 'grant') ctx.grantRetained.watch(s);
    callback(null);
  };
}

/**
 * A retained publish past the device's retained caps (count, bytes, payload
 * size) is delivered to current subscribers but not kept for later ones, as
 * EMQX does past its retained limits: MQTT 3.1.1 has no way to refuse only the
 * retain part, and dropping the message would lose live data.
 */
function keepWithinCaps(ctx: BrokerContext, deviceId: string, packet: PublishPacket): boolean {
  const bytes = typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.length;
  const refused = ctx.retained.publish(deviceId, packet.topic, bytes);
  if (!refused) return true;
  packet.retain = false;
  ctx.metrics.limitRefusals.inc({ limit: refused });
  ctx.log.debug({ event: 'retained.refused', device: deviceId, reason: refused, bytes }, 'retained message not kept: over the device\'s retained caps');
  return false;
}

/** Acknowledges the publish normally but routes it nowhere. */
function drop(packet: PublishPacket, callback: (err?: Error | null) => void): void {
  packet.topic = BLACK_HOLE;
  packet.retain = false;
  callback(null);
}
