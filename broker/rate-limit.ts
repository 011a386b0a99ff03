import type { BrokerMetrics } from './metrics.js';

/**
 * What the hooks ask of a per-key limit. One process: a KeyedRateLimiter. A
 * node's worker: the same, counted for the node by its primary
 * (cluster/shared-limits.ts), so that N workers do not grant N times the limit.
 */
export interface RateLimiter {
  /** True when no key is being limited: lets callers skip computing a key. */
  isEmpty(): boolean;
  /** True when `key` still has a token (without taking one). */
  allows(key: string, now?: number): boolean;
  /** Takes a token; false (and nothing taken) when there is none. */
  take(key: string, now?: number): boolean;
  close(): void;
}

/** The broker's per-key limits (BrokerContext). */
export type LimiterName = 'authFailures' | 'deviceConnects' | 'renewals' | 'claimRequests' | 'claimAddresses' | 'claimConnects' | 'claimConnectAddresses';

/** Builds each of the limits from its burst and rate (startBroker's `limiters` option); `metrics` for what it counts. */
export type LimiterFactory = (name: LimiterName, burst: number, perSecond: number, metrics: BrokerMetrics) => RateLimiter;

/** The default: each process counts on its own. */
export const localLimiters: LimiterFactory = (_name, burst, perSecond) => new KeyedRateLimiter(burst, perSecond);

/**
 * Token buckets keyed by a string (an address, a device id). Memory is bounded:
 * a bucket that has refilled completely is indistinguishable from a new one, so
 * full buckets are swept away periodically.
 */
export class KeyedRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly burst: number;
  private readonly perMs: number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(burst: number, perSecond: number) {
    this.burst = burst;
    this.perMs = perSecond / 1000;
    this.sweeper = setInterval(() => this.sweep(), 30_000).unref();
  }

  private level(key: string, now: number): { tokens: number; at: number } {
    const b = this.buckets.get(key);
    if (!b) return { tokens: this.burst, at: now };
    return { tokens: Math.min(this.burst, b.tokens + (now - b.at) * this.perMs), at: now };
  }

  /** True when no key has spent a token lately (every bucket is full): lets callers skip computing a key. */
  isEmpty(): boolean {
    return this.buckets.size === 0;
  }

  /** True when `key` still has a token (without taking one). */
  allows(key: string, now = Date.now()): boolean {
    return this.level(key, now).tokens >= 1;
  }

  /** Takes a token; false (and nothing taken) when the bucket is empty. */
  take(key: string, now = Date.now()): boolean {
    const b = this.level(key, now);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    this.buckets.set(key, b);
    return true;
  }

  private sweep(now = Date.now()): void {
    for (const [key, b] of this.buckets) if (b.tokens + (now - b.at) * this.perMs >= this.burst) this.buckets.delete(key);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
