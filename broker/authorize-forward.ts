import type { AedesPublishPacket, Client } from 'aedes';
import { mayReceive } from '../acl/index.js';
import type { BrokerContext } from './context.js';
import { BLACK_HOLE } from './authorize-publish.js';
import type { OutboundQueues } from './outbound-queue.js';
import { sessionOf } from './session.js';

/**
 * The aedes `authorizeForward` hook, called for every delivery: synchronous and
 * cheap by design (aedes#44). Nothing is delivered to a session that has ended
 * or passed its deadline, and dropped publishes go nowhere. A session whose
 * subscriptions may predate its ACL (`checkDelivery`: persistent, or its ACL
 * changed at renewal) gets only topics its current ACL lets it receive: live
 * subscriptions, its offline queue and retained messages alike. Other sessions
 * skip that check, whose per-message cost `npm run bench` reports ("forward").
 * A client that is behind gets no more QoS 0 past its queue bounds, and is
 * closed when it stays behind (`outbound` is null only when the limits are
 * switched off for a benchmark).
 */
export function createAuthorizeForward(ctx: BrokerContext, outbound: OutboundQueues | null) {
  const denied = ctx.metrics.aclDenials.labels('deliver');
  const checks = !ctx.weaken.skipSubscribeCheck;
  return function authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (packet.topic === BLACK_HOLE) return null;
    const s = sessionOf(client);
    if (!s || s.ended || ctx.sessions.expired(s)) return null;
    if (s.checkDelivery && checks && !mayReceive(s.acl, packet.topic)) {
      denied.inc();
      return null;
    }
    if (!outbound) return packet;
    const verdict = outbound.admit(client, packet);
    if (verdict === 'forward') return packet;
    if (verdict === 'disconnect') ctx.sessions.kick(client, 'slow_consumer');
    else ctx.metrics.outboundDropped.inc({ reason: verdict === 'drop_messages' ? 'messages' : 'bytes' });
    return null;
  };
}
