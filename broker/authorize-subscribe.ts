import type { Client, Subscription } from 'aedes';
import { maySubscribe } from '../acl/index.js';
import type { BrokerContext } from './context.js';
import { alreadyLogged } from './logged-error.js';
import { auditGrantDenied } from './grant-session.js';
import { sessionOf } from './session.js';

/**
 * The aedes `authorizeSubscribe` hook: a filter is granted only if every topic
 * it could match is in the session's subscribe ACL, and the connection holds
 * fewer than `maxSubscriptionsPerConnection` filters; otherwise SUBACK 0x80
 * (aedes sends 0x80 when the callback passes a null subscription).
 */
export function createAuthorizeSubscribe(ctx: BrokerContext) {
  return function authorizeSubscribe(client: Client, sub: Subscription, callback: (err: Error | null, sub?: Subscription | null) => void): void {
    const s = sessionOf(client);
    if (!s) return callback(new Error('no session'));
    if (s.ended) return callback(alreadyLogged(new Error('session ended'))); // kicked: logged then
    if (ctx.sessions.expired(s)) {
      ctx.sessions.kick(client, 'expired');
      return callback(alreadyLogged(new Error('token expired')));
    }
    if (!ctx.weaken.skipSubscribeCheck && !maySubscribe(s.acl, sub.topic)) {
      ctx.metrics.aclDenials.inc({ action: 'subscribe' });
      ctx.log.debug({ event: 'acl.subscribe_denied', device: s.deviceId }, 'subscribe refused');
      if (s.grant) auditGrantDenied(ctx, s, 'subscribe', sub.topic);
      return callback(null, null);
    }
    if (!ctx.subscriptions.admit(client, sub.topic)) {
      ctx.metrics.limitRefusals.inc({ limit: 'subscriptions_per_connection' });
      ctx.log.debug({ event: 'limit.subscriptions', device: s.deviceId, max: ctx.config.maxSubscriptionsPerConnection }, 'subscribe refused: too many subscriptions');
      return callback(null, null);
    }
    callback(null, sub);
  };
}
