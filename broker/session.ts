import type { Client } from 'aedes';
import { compileAcl, type CompiledAcl } from '../acl/index.js';
import type { AclClaim } from '../tokens/index.js';
import { tokenTopics } from '../protocol/renewal.js';
import type { DeviceId, Jti } from '../registry/index.js';

/** Why the broker ended a session itself. */
export type KickReason = 'expired' | 'device_revoked' | 'token_revoked' | 'key_retired' | 'acl_violation' | 'theft' | 'shutdown' | 'renew_abuse' | 'slow_consumer' | 'claim_answered' | 'grant_revoked';

/**
 * What the broker knows about an authenticated connection, decided once at
 * CONNECT (the ACL is compiled there and kept here).
 * - `token`: connected with an access token; full ACL.
 * - `refresh`: connected with a refresh credential; token topics only.
 * - `claim`: connected with a claim credential to provision the device id it
 *   names (its client id); its claim topics only (broker/claim-session.ts).
 * - `grant`: a grant's token (`grant:NAME`); exactly its ACL, no token topics.
 */
export interface Session {
  readonly deviceId: DeviceId;
  readonly kind: 'token' | 'refresh' | 'claim' | 'grant';
  /** The claim a `claim` session provisions through. */
  readonly claim?: string;
  /** A grant session's name and reason, for its audit rows. */
  readonly grant?: { readonly name: string; readonly reason: string | null };
  jti: Jti | null;
  /** ms; when the broker accepted the CONNECT (`credbroker sessions`). */
  readonly connectedAt: number;
  /** The signing key of the session's token (null on a refresh session): the session ends when the key stops verifying. */
  kid: string | null;
  /** ms; the session is closed at this instant plus the leeway unless renewed. */
  expiresAt: number;
  acl: CompiledAcl;
  /**
   * Hold every delivery to `acl` (authorizeForward). Set when subscriptions or
   * queued messages may predate the current ACL: a persistent session (restored
   * subscriptions, its offline queue) or one whose renewal changed the subscribe
   * rules. Off otherwise: SUBSCRIBE already checked them, and the check costs
   * per message.
   */
  checkDelivery: boolean;
  refreshHash: string | null;
  /** Set when the broker closes the session: no will, no more traffic. */
  ended: KickReason | null;
}

const SESSION = Symbol('credbroker.session');
type WithSession = Client & { [SESSION]?: Session; will?: unknown; _will?: unknown };

export function sessionOf(client: Client | null | undefined): Session | undefined {
  return client ? (client as WithSession)[SESSION] : undefined;
}

export function setSession(client: Client, s: Session): void {
  (client as WithSession)[SESSION] = s;
}

/** Drops the client's last will: a kicked (revoked, expired) device's will is never published. */
export function forgetWill(client: Client): void {
  const c = client as WithSession;
  c.will = null;
  c._will = null;
}

/** True when two compiled ACLs let a session receive exactly the same topics (same subscribe patterns). */
export function sameSubscribeRules(a: CompiledAcl, b: CompiledAcl): boolean {
  const as = a.rules.sub, bs = b.rules.sub;
  const same = (x: string | null, y: string | null) => (x ?? a.device) === (y ?? b.device);
  return as.length === bs.length && as.every((p, i) => p.levels.length === bs[i]!.levels.length && p.levels.every((l, j) => same(l, bs[i]!.levels[j] as string | null)));
}

/**
 * A session's compiled ACL: the token's ACL plus the device's own renewal topics;
 * for a refresh-credential session (no token ACL), the renewal topics only.
 */
export function sessionAcl(deviceId: string, acl: AclClaim | null): CompiledAcl {
  const own = tokenTopics(deviceId);
  return compileAcl({ pub: [...(acl?.pub ?? []), own.renew], sub: [...(acl?.sub ?? []), own.filter] }, deviceId);
}
