import { KeyedRateLimiter, type LimiterFactory, type LimiterName, type RateLimiter } from '../broker/rate-limit.js';
import { eachCount, isToWorker, type KeyCounts, type ToPrimary } from './ipc.js';

/** How often a worker sends what it counted: a device cycling over the workers gets at most this long past its limit. */
const FLUSH_MS = 25;
/** Keys counted but not yet sent, per limit: past this, new keys are limited by this worker alone. */
const MAX_PENDING_KEYS = 20_000;
/** Keys the primary reported empty, per limit. */
const MAX_BLOCKED_KEYS = 100_000;

/**
 * A worker's side of the node's per-key limits (the primary's is
 * node-limits.ts), so that N workers do not grant N times a limit. Each
 * decision stays local and synchronous (no round trip on a CONNECT): the worker
 * takes from its own bucket, sends what it took to its primary every FLUSH_MS
 * in one message, and refuses the keys the primary reports empty until they
 * have a token again. Nothing goes through Redis. While the primary cannot be
 * reached the worker's own bucket keeps limiting, and the counts it could not
 * send are counted in credbroker_shared_limit_fallbacks_total.
 */
export class SharedLimits {
  private readonly byName = new Map<LimiterName, SharedLimiter>();
  private readonly timer: NodeJS.Timeout;

  /** @param send to the primary; false when it cannot be reached */
  constructor(private readonly send: (m: ToPrimary) => boolean) {
    let ticks = 0;
    this.timer = setInterval(() => {
      this.flush();
      if (++ticks % 200 === 0) for (const l of this.byName.values()) l.sweep();
    }, FLUSH_MS).unref();
  }

  /** startBroker's `limiters` option. */
  readonly limiters: LimiterFactory = (name, burst, perSecond, metrics) => {
    // A bucket that never refills has no rate to share: it stays this worker's.
    if (!(perSecond > 0)) return new KeyedRateLimiter(burst, perSecond);
    const limiter = new SharedLimiter(burst, perSecond, metrics.sharedLimitFallbacks.labels(name));
    this.byName.set(name, limiter);
    return limiter;
  };

  /** A message from the primary: the keys it reports empty are refused here too (anything malformed is ignored). */
  heard(m: unknown, now = Date.now()): void {
    if (!isToWorker(m) || m.credbroker !== 'empty') return;
    eachCount(m.keys, (name) => this.byName.has(name as LimiterName), (name, key, ms) => this.byName.get(name)!.block(key, ms, now));
  }

  private flush(): void {
    const counts: KeyCounts = {};
    let any = false;
    for (const [name, limiter] of this.byName) {
      const batch = limiter.drain();
      if (batch.length === 0) continue;
      counts[name] = batch;
      any = true;
    }
    if (!any || this.send({ credbroker: 'took', counts })) return;
    for (const [name, batch] of Object.entries(counts)) this.byName.get(name as LimiterName)!.unsent(batch.length);
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/** One limit: a local bucket, plus the keys the primary reports empty. */
class SharedLimiter implements RateLimiter {
  private readonly local: KeyedRateLimiter;
  /** Key → when it has a token again. */
  private readonly blocked = new Map<string, number>();
  private pending = new Map<string, number>();
  /**
   * The longest refusal the node's own settings can imply: one token's refill
   * (the primary never takes a bucket below empty). A longer one is cut to this.
   */
  private readonly maxBlockMs: number;

  constructor(burst: number, perSecond: number, private readonly fallback: { inc(n?: number): void }) {
    this.local = new KeyedRateLimiter(burst, perSecond);
    this.maxBlockMs = Math.ceil(1000 / perSecond);
  }

  isEmpty(): boolean {
    return this.blocked.size === 0 && this.local.isEmpty();
  }

  allows(key: string, now = Date.now()): boolean {
    return !this.isBlocked(key, now) && this.local.allows(key, now);
  }

  take(key: string, now = Date.now()): boolean {
    if (this.isBlocked(key, now) || !this.local.take(key, now)) return false;
    const n = this.pending.get(key);
    if (n !== undefined) this.pending.set(key, n + 1);
    else if (this.pending.size < MAX_PENDING_KEYS) this.pending.set(key, 1);
    else this.fallback.inc();
    return true;
  }

  private isBlocked(key: string, now: number): boolean {
    if (this.blocked.size === 0) return false;
    const until = this.blocked.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.blocked.delete(key);
    return false;
  }

  /** What was taken since the last call. */
  drain(): [string, number][] {
    if (this.pending.size === 0) return [];
    const batch = [...this.pending];
    this.pending = new Map();
    return batch;
  }

  /** `n` keys' counts did not reach the primary. */
  unsent(n: number): void {
    this.fallback.inc(n);
  }

  /** Refuses `key` for `ms` (at most maxBlockMs): the node's bucket for it is empty. */
  block(key: string, ms: number, now: number): void {
    if (this.blocked.size < MAX_BLOCKED_KEYS || this.blocked.has(key)) this.blocked.set(key, now + Math.min(ms, this.maxBlockMs));
    else this.fallback.inc(); // too many keys at once: this worker's own bucket limits the rest
  }

  sweep(now = Date.now()): void {
    for (const [key, until] of this.blocked) if (until <= now) this.blocked.delete(key);
  }

  close(): void {
    this.local.close();
  }
}
