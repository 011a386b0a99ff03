import type { AedesPublishPacket, Client } from 'aedes';
import { mayReceive } from '../acl/index.js';
import type { BrokerContext } from './context.js';
import { BLACK_HOLE } from './authorize-publish.js';
import { sessionOf } from './session.js';

/**
 * The aedes `authorizeForward` hook, called for every delivery: synchronous and
 * cheap by design (aedes#44). Nothing is delivered to a session that has ended
 * or passed its deadline, and dropped publishes go nowhere. A session whose
 * subscriptions may predate its ACL (`checkDelivery`: persistent, or its ACL
 * changed at renewal) gets only topics its current ACL lets it receive: live
 * subscriptions, its offline queue and retained messages alike. Other sessions
 * skip that check, whose per-message cost `npm run bench` reports ("forward").
 */
export function createAuthorizeForward(ctx: BrokerContext) {
  const denied = ctx.metrics.aclDenials.labels('deliver');
  const checks = !ctx.config.weaken.skipSubscribeCheck;
  return function authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (packet.topic === BLACK_HOLE) return null;
    const s = sessionOf(client);
    if (!s || s.ended || ctx.sessions.expired(s)) return null;
    if (s.checkDelivery && checks && !mayReceive(s.acl, packet.topic)) {
      denied.inc();
      return null;
    }
    return packet;
  };
}
