import * as crypto from 'node:crypto';
import type { CompiledAcl } from '../acl/index.js';
import type { DeviceId, Jti } from '../registry/index.js';
import type { AclClaim, VerifyKey, VerifyOptions } from '../tokens/index.js';
import { Lru } from '../util/lru.js';

/** What the cache needs of a remembered token: when it dies, and which key verified it. */
export interface Cacheable {
  /** The token's `exp`, seconds. */
  readonly exp: number;
  readonly kid: string;
}

/**
 * What the broker remembers of an accepted access token: the verified claims a
 * session is built from, and the session's ACL compiled once from them. Every
 * session of the token holds that same compiled object (a renewal replaces a
 * session's ACL, never changes it), so a connected device pays for it once, and
 * a reconnect with the same token compiles nothing.
 */
export interface AcceptedToken extends Cacheable {
  readonly sub: DeviceId;
  readonly jti: Jti;
  readonly iat: number;
  /**
   * A grant's patterns, for its session's check (grant-session.ts). Absent on a
   * device's token: its session needs only `compiled` (shared by every device of
   * its profile), and an entry holding the claim's own strings would cost every
   * connected device a copy.
   */
  readonly acl?: AclClaim;
  /** The ACL a session of this token holds (broker/session.ts `sessionAcl`; a grant's: exactly `acl`). */
  readonly compiled: CompiledAcl;
  /** A grant's reason (tokens/claims.ts), for its audit rows. */
  readonly reason?: string;
}

/** Why entries left the cache (`credbroker_verified_token_cache_evictions_total{reason}`). */
export type EvictionReason = 'capacity' | 'expired' | 'key' | 'settings' | 'clock';

export interface VerifiedTokensEvents {
  hit(): void;
  miss(): void;
  evicted(reason: EvictionReason, n: number): void;
}

/**
 * SHA-256 of every byte, as 32 one-byte characters (the cheapest string a Map can key on).
 * `crypto.hash` (Node ≥ 20.12, one call) costs about half of a Hash object for a token;
 * a namespace import, because a named one fails to load on an older Node 20.
 */
const sha256: (data: Buffer) => string = typeof crypto.hash === 'function'
  ? (data) => crypto.hash('sha256', data, 'binary')
  : (data) => crypto.createHash('sha256').update(data).digest('binary');

/** How often entries past their token's `exp` (or their key's end) are swept out; lookups check it exactly anyway. */
const SWEEP_MS = 60_000;

interface Entry<T> {
  readonly value: T;
  /** The key it was verified with: the entry lives only while the keyring holds this key unchanged. */
  key: VerifyKey;
  /** ms, when jose passed it: a clock stepped back before this could make jose refuse an `nbf` or `iat` it passed. */
  readonly verifiedAt: number;
  /** ms: the token's `exp` without the leeway, so a hit is never accepted where a fresh check would refuse. */
  readonly expiresAt: number;
}

/**
 * Access tokens this broker has verified and accepted, so that a device that
 * comes back with the same token (a reconnect storm after a network blip) is
 * not verified again (issue #12). Keyed by the SHA-256 of every byte of the
 * password: two passwords that differ anywhere are two entries. Bounded by
 * entry count, least recently used evicted first.
 *
 * Only the verification is remembered; the caller still checks the identity,
 * revocation and rate limits and builds the session on every CONNECT. An answer
 * from here stands for a verification under the same rules, so an entry is
 * dropped as soon as any input of that verification could have changed:
 * - the token's `exp` has passed (exactly, without the leeway a fresh check allows);
 * - its signing key left the keyring, or changed in any way (retired by a
 *   rotation, killed by `keys rotate --now`, past its `verify_until`);
 * - the verification settings changed (issuer, audience, leeway, lifetime cap, algorithms);
 * - the clock stepped back before the moment it was verified.
 * The rest of what the verifier checks (shape, header, signature, claim types,
 * `nbf`, `iat` not ahead, lifetime ≤ cap) depends only on the token's bytes, the
 * key and those settings, and on time only in one direction: a check passed at
 * one instant passes at every later instant before `exp`.
 *
 * @example
 * const digest = cache.digestOf(password);
 * const accepted = (digest && cache.get(digest, keys, opts)) || acceptedFrom(verifyAccessToken(token, keys, opts));
 * // ... identity and revocation checks passed:
 * if (digest) cache.remember(digest, accepted, keys, opts);
 */
export class VerifiedTokens<T extends Cacheable = AcceptedToken> {
  private readonly entries: Lru<string, Entry<T>>;
  /** The keyring and settings the entries hold for; a lookup with others first re-checks the entries. */
  private keys: ReadonlyMap<string, VerifyKey> | null = null;
  private opts: VerifyOptions | null = null;
  private readonly sweeper: NodeJS.Timeout | null;

  constructor(maxEntries: number, private readonly events: VerifiedTokensEvents) {
    this.entries = new Lru(maxEntries);
    this.sweeper = maxEntries > 0 ? setInterval(() => this.sweep(), SWEEP_MS).unref() : null;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cache key for a password, or null when the cache is off (`verifiedTokenCache: 0`). */
  digestOf(password: Buffer): string | null {
    return this.entries.max === 0 ? null : sha256(password);
  }

  /** The remembered verification of this token under `keys` and `opts`, or undefined (verify it). */
  get(digest: string, keys: ReadonlyMap<string, VerifyKey>, opts: VerifyOptions, now = Date.now()): T | undefined {
    // A verification at another instant than now (tests) is never answered from here.
    if (opts.now !== undefined) return undefined;
    this.follow(keys, opts, now);
    const e = this.entries.get(digest);
    if (e === undefined) {
      this.events.miss();
      return undefined;
    }
    const dead: EvictionReason | null = now >= e.expiresAt ? 'expired' : now < e.verifiedAt ? 'clock' : now >= e.key.verifyUntil ? 'key' : null;
    if (dead !== null) {
      this.entries.delete(digest);
      this.events.evicted(dead, 1);
      this.events.miss();
      return undefined;
    }
    this.events.hit();
    return e.value;
  }

  /** Remembers a token that was verified (under `keys` and `opts`, just now) and accepted. */
  remember(digest: string, value: T, keys: ReadonlyMap<string, VerifyKey>, opts: VerifyOptions, now = Date.now()): void {
    if (opts.now !== undefined) return;
    this.follow(keys, opts, now);
    const key = keys.get(value.kid);
    const expiresAt = value.exp * 1000;
    if (!key || now >= expiresAt || now >= key.verifyUntil) return;
    const evicted = this.entries.set(digest, { value, key, verifiedAt: now, expiresAt });
    if (evicted) this.events.evicted('capacity', evicted);
  }

  /**
   * The keyring was reloaded: entries whose key is gone or changed in any way go
   * (the broker calls this right after a reload; a lookup with a new keyring does it too).
   */
  keysChanged(keys: ReadonlyMap<string, VerifyKey>, now = Date.now()): void {
    if (keys === this.keys) return;
    this.keys = keys;
    // One decision per key, not per entry: a reload replaces every key object.
    const next = new Map<VerifyKey, VerifyKey | null>();
    let dropped = 0;
    for (const [digest, e] of this.entries.entries()) {
      let k = next.get(e.key);
      if (k === undefined) next.set(e.key, (k = sameKey(e.key, keys.get(e.key.kid), now)));
      if (k) e.key = k;
      else {
        this.entries.delete(digest);
        dropped++;
      }
    }
    if (dropped) this.events.evicted('key', dropped);
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  private follow(keys: ReadonlyMap<string, VerifyKey>, opts: VerifyOptions, now: number): void {
    if (opts !== this.opts) {
      if (this.opts !== null && !sameRules(this.opts, opts) && this.entries.size > 0) {
        this.events.evicted('settings', this.entries.size);
        this.entries.clear();
      }
      this.opts = opts;
    }
    this.keysChanged(keys, now);
  }

  private sweep(now = Date.now()): void {
    const dead: Partial<Record<EvictionReason, number>> = {};
    for (const [digest, e] of this.entries.entries()) {
      const why = now >= e.expiresAt ? 'expired' : now >= e.key.verifyUntil ? 'key' : null;
      if (why === null) continue;
      this.entries.delete(digest);
      dead[why] = (dead[why] ?? 0) + 1;
    }
    for (const [why, n] of Object.entries(dead) as [EvictionReason, number][]) this.events.evicted(why, n);
  }
}

/** `current` when it is the same key with the same life (material, algorithm, retirement, end), else null. */
function sameKey(was: VerifyKey, current: VerifyKey | undefined, at: number): VerifyKey | null {
  if (current === undefined || at >= current.verifyUntil) return null;
  if (current === was) return current;
  const same = current.alg === was.alg && current.retiredAt === was.retiredAt && current.verifyUntil === was.verifyUntil && current.key.equals(was.key);
  return same ? current : null;
}

/** Whether two sets of verification options apply the same rules (the broker rebuilds them when the keys reload). */
function sameRules(a: VerifyOptions, b: VerifyOptions): boolean {
  const algs = (o: VerifyOptions) => o.algorithms?.join(',');
  return a.issuer === b.issuer && a.audience === b.audience && a.leewaySec === b.leewaySec && a.maxLifetimeSec === b.maxLifetimeSec && algs(a) === algs(b);
}
