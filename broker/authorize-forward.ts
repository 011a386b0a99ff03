import type { AedesPublishPacket, Client } from 'aedes';
import type { BrokerContext } from './context.js';
import { BLACK_HOLE } from './authorize-publish.js';
import { sessionOf } from './session.js';

/**
 * The aedes `authorizeForward` hook, called for every delivery: synchronous and
 * cheap by design (aedes#44). Nothing is delivered to a session that has ended
 * or passed its deadline, and dropped publishes go nowhere.
 */
export function createAuthorizeForward(ctx: BrokerContext) {
  return function authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (packet.topic === BLACK_HOLE) return null;
    const s = sessionOf(client);
    if (!s || s.ended || ctx.sessions.expired(s)) return null;
    return packet;
  };
}
