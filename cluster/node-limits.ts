import type { RateSetting } from '../broker/limits.js';
import type { LimiterName } from '../broker/rate-limit.js';
import { eachCount, type KeyCounts, type ToWorker } from './ipc.js';

/** Keys kept per limit; past it the one counted least recently is forgotten (each worker's own bucket still limits it). */
const MAX_KEYS = 100_000;
/** How often keys whose bucket has refilled are dropped. */
const SWEEP_MS = 30_000;

/**
 * The primary's side of a node's per-key rate limits (the worker's side is
 * shared-limits.ts): one bucket per key for the whole node, fed by the counts
 * the workers send, so that N workers do not grant N times a limit. It answers
 * with the keys left empty, for every worker to refuse until they have a token
 * again. Only the node's own workers feed it, over node:cluster's IPC channel:
 * nothing read from Redis counts, and each node limits on its own.
 */
export class NodeLimits {
  private readonly buckets = new Map<LimiterName, NodeBucket>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(settings: Record<LimiterName, RateSetting>) {
    // A bucket that never refills stays each worker's (as in shared-limits.ts).
    for (const [name, s] of Object.entries(settings)) if (s.perSecond > 0) this.buckets.set(name as LimiterName, new NodeBucket(s.burst, s.perSecond));
    this.sweeper = setInterval(() => { for (const b of this.buckets.values()) b.sweep(Date.now()); }, SWEEP_MS).unref();
  }

  /** A worker's `took` counts, taken from the node's buckets: the message for every worker naming the keys now empty, or null when none is. */
  took(counts: unknown, now = Date.now()): ToWorker | null {
    const keys: KeyCounts = {};
    let any = false;
    eachCount(counts, (name) => this.buckets.has(name as LimiterName), (name, key, n) => {
      const wait = this.buckets.get(name)!.take(key, n, now);
      if (wait <= 0) return;
      (keys[name] ??= []).push([key, wait]);
      any = true;
    });
    return any ? { credbroker: 'empty', keys } : null;
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}

/**
 * Token buckets as GCRA: per key, the time at which its bucket is full again
 * (one number a key). Keys are in the order last counted: the first is the quietest.
 */
class NodeBucket {
  private readonly full = new Map<string, number>();
  private readonly perMs: number;
  private readonly capMs: number;

  constructor(burst: number, perSecond: number) {
    this.perMs = 1000 / perSecond;
    this.capMs = burst * this.perMs;
  }

  /** Takes `n` tokens (as many as are left); returns the ms until `key` has a token again, 0 when it has one now. */
  take(key: string, n: number, now: number): number {
    const at = Math.max(now, this.full.get(key) ?? now);
    const left = Math.floor((this.capMs + now - at) / this.perMs);
    const full = at + Math.min(n, left) * this.perMs;
    this.full.delete(key);
    this.full.set(key, full);
    if (this.full.size > MAX_KEYS) this.full.delete(this.full.keys().next().value!);
    return Math.max(0, Math.ceil(full + this.perMs - this.capMs - now));
  }

  sweep(now: number): void {
    for (const [key, full] of this.full) if (full <= now) this.full.delete(key);
  }
}
