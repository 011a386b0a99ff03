import { ungrantable } from '../acl/index.js';
import { CredentialError } from '../errors/index.js';
import { grantNameOf, type DeviceId } from '../registry/index.js';
import type { BrokerContext } from './context.js';
import type { KickReason, Session } from './session.js';
import type { AcceptedToken } from './verified-tokens.js';

/**
 * A grant's session (SPEC "Grants"), from its verified token: exactly the
 * token's patterns, and none of the renewal topics a device session gets, so
 * a grant can neither renew nor subscribe to any `$devices/…` answer. Its
 * deadline is the token's expiry, for good.
 * @throws CredentialError `ERR_TOKEN_CLAIM` for a token holding a pattern no grant may hold
 *   (only a registry's own key can sign one: refused all the same)
 */
export function grantSession(principal: DeviceId, token: AcceptedToken): Session {
  const name = grantNameOf(principal);
  // No patterns kept (never so for a grant's token, authenticate.ts): refused, not let through.
  if (name === null || !token.acl || [...token.acl.pub, ...token.acl.sub].some((p) => ungrantable(p) !== null)) {
    throw new CredentialError('ERR_TOKEN_CLAIM', 'grant token holds a pattern no grant may hold');
  }
  return {
    deviceId: principal, kind: 'grant', jti: token.jti, kid: token.kid, connectedAt: Date.now(), expiresAt: token.exp * 1000, refreshHash: null,
    ended: null, checkDelivery: false, acl: token.compiled, grant: { name, reason: token.reason ?? null },
  };
}

/** The facts every audit row about a grant carries: its name and reason (never its token). */
function grantFacts(s: Session): Record<string, unknown> {
  return { grant: s.grant!.name, reason: s.grant!.reason, jti: s.jti };
}

/** A grant's CONNECT, accepted: one row each (bounded by the connect rate per name). */
export function auditGrantConnect(ctx: BrokerContext, s: Session, address: string): void {
  ctx.audit.add('broker', 'grant.connect', s.deviceId, { ...grantFacts(s), address, expiresAt: s.expiresAt });
}

/** A grant closed by the broker (expiry, revocation, a denied publish...). */
export function auditGrantKick(ctx: BrokerContext, s: Session, why: KickReason): void {
  ctx.audit.add('broker', 'grant.kick', s.deviceId, { ...grantFacts(s), why });
}

/**
 * A publish or subscribe the grant's ACL refused. Tallied per grant: with
 * `deniedPublish: drop` or a SUBSCRIBE loop a client could send them without
 * end, so past the per-key budget they become one summary row per window.
 */
export function auditGrantDenied(ctx: BrokerContext, s: Session, action: 'publish' | 'subscribe', topic: string): void {
  ctx.tally.event(`grant.${action}_denied`, 'device', s.deviceId, s.deviceId, 'not_in_acl', { ...grantFacts(s), topic: topic.slice(0, 256) });
}
