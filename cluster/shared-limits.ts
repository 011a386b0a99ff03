import { Redis } from 'ioredis';
import { endConnection } from './bus.js';
import { redisOptions, type RedisTarget } from './redis-options.js';
import type { Logger } from '../broker/logger.js';
import type { BrokerMetrics } from '../broker/metrics.js';
import { KeyedRateLimiter, type LimiterFactory, type LimiterName, type RateLimiter } from '../broker/rate-limit.js';

/** How often a worker sends what it counted: a device cycling over the workers gets at most this long past its limit. */
const FLUSH_MS = 25;
/** Keys counted but not yet sent, per limit: past this (Redis slow or gone) new keys are limited by this worker alone. */
const MAX_PENDING_KEYS = 20_000;
/** Keys another worker emptied, per limit. */
const MAX_BLOCKED_KEYS = 100_000;

/**
 * The same token bucket as KeyedRateLimiter, kept in Redis as one number per key
 * (GCRA: the time at which the bucket is full again). Takes a batch: KEYS are
 * the buckets; ARGV: the channel, ms per token, the burst,
 * then how many tokens each key took. Publishes each key left empty, with the
 * ms until it has a token again, so that every worker refuses it at once. Redis'
 * clock, so that nodes on several hosts agree.
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local per = tonumber(ARGV[2])
local cap = tonumber(ARGV[3]) * per
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local free = math.floor((cap + now - tat) / per)
  local n = tonumber(ARGV[i + 3])
  if free < n then n = free end
  if n > 0 then tat = tat + n * per end
  redis.call('SET', key, tostring(tat), 'PX', math.max(1, math.ceil(tat - now)))
  local wait = math.ceil(tat + per - cap - now)
  if wait > 0 then redis.call('PUBLISH', ARGV[1], wait .. ' ' .. key) end
end
return #KEYS
`;

type TakeBatch = (numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

/**
 * The three per-key limits shared by every worker and node on one Redis, so that
 * N workers do not grant N times a limit. Each decision stays local and
 * synchronous (no Redis round trip on a CONNECT): a worker takes from its own
 * bucket, sends what it took every FLUSH_MS in one script call per limit, and
 * refuses the keys that Redis announces empty until they have a token again. A
 * Redis error never fails a CONNECT: the worker's own bucket keeps limiting, and
 * the counts it could not send are counted in credbroker_shared_limit_fallbacks_total.
 */
export class SharedLimits {
  private readonly redis: Redis;
  /** A connection in subscriber mode hears the emptied keys. */
  private readonly sub: Redis;
  private readonly takeBatch: TakeBatch;
  private readonly channel: string;
  private readonly byName = new Map<LimiterName, SharedLimiter>();
  private down = false;

  constructor(target: RedisTarget, private readonly log: Logger, private readonly prefix = 'credbroker:limit:') {
    this.channel = `${prefix}empty`;
    this.redis = new Redis(target.url, redisOptions(target, {
      // Fail at once while disconnected: a count that cannot be shared now is not worth sending later.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    }));
    this.sub = this.redis.duplicate({ enableOfflineQueue: true });
    for (const conn of [this.redis, this.sub]) conn.on('error', (err: Error) => this.failed(err));
    this.redis.on('ready', () => {
      if (!this.down) return;
      this.down = false;
      this.log.info({ event: 'cluster.shared_limits_up' }, 'rate limits shared over the bus again');
    });
    this.sub.on('message', (_channel: string, message: string) => this.emptied(message));
    this.sub.subscribe(this.channel).catch((err: Error) => this.failed(err));
    this.redis.defineCommand('credbrokerTake', { lua: TAKE });
    const cmd = (this.redis as unknown as { credbrokerTake: TakeBatch }).credbrokerTake;
    this.takeBatch = cmd.bind(this.redis);
  }

  /** startBroker's `limiters` option. */
  readonly limiters: LimiterFactory = (name, burst, perSecond, metrics) => {
    // A bucket that never refills has no rate to share: it stays this worker's.
    if (!(perSecond > 0)) return new KeyedRateLimiter(burst, perSecond);
    const limiter = new SharedLimiter(name, burst, perSecond, metrics, this);
    this.byName.set(name, limiter);
    return limiter;
  };

  /** Sends one limit's counts. */
  send(name: LimiterName, perMs: number, burst: number, counts: Map<string, number>): Promise<unknown> {
    const keys = [...counts.keys()];
    return this.takeBatch(keys.length, ...keys.map((k) => `${this.prefix}${name}:${k}`), this.channel, perMs, burst, ...counts.values());
  }

  /** "<ms> <prefix><name>:<key>" from the script: refuse the key here too. */
  private emptied(message: string): void {
    const space = message.indexOf(' ');
    const full = message.slice(space + 1);
    if (space < 0 || !full.startsWith(this.prefix)) return;
    const rest = full.slice(this.prefix.length);
    const colon = rest.indexOf(':');
    const limiter = this.byName.get(rest.slice(0, colon) as LimiterName);
    limiter?.block(rest.slice(colon + 1), Date.now() + Number(message.slice(0, space)));
  }

  /** One line when sharing stops (not one per failed batch); another when it is back. */
  failed(err: Error): void {
    if (this.down) return;
    this.down = true;
    this.log.warn({ event: 'cluster.shared_limits_down', err: err.message }, 'rate limits not shared over the bus: each worker limits on its own until Redis is back');
  }

  async close(): Promise<void> {
    // Not a plain QUIT: with Redis away, the subscriber's would wait in its offline queue.
    await Promise.all([this.sub, this.redis].map(endConnection));
  }
}

/** One shared limit: a local bucket, plus the keys Redis reports empty. */
class SharedLimiter implements RateLimiter {
  private readonly local: KeyedRateLimiter;
  /** Key → when it has a token again (this host's clock). */
  private readonly blocked = new Map<string, number>();
  private pending = new Map<string, number>();
  private sending = false;
  private readonly perMs: number;
  private readonly timer: NodeJS.Timeout;
  private readonly fallback: { inc(n?: number): void };

  constructor(private readonly name: LimiterName, private readonly burst: number, perSecond: number, metrics: BrokerMetrics, private readonly shared: SharedLimits) {
    this.local = new KeyedRateLimiter(burst, perSecond);
    this.perMs = 1000 / perSecond;
    this.fallback = metrics.sharedLimitFallbacks.labels(name);
    let ticks = 0;
    this.timer = setInterval(() => {
      this.flush();
      if (++ticks % 200 === 0) this.sweep();
    }, FLUSH_MS).unref();
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

  /** One batch in flight at a time: while Redis is slow, counts gather (bounded) for the next. */
  private flush(): void {
    if (this.sending || this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.sending = true;
    this.shared.send(this.name, this.perMs, this.burst, batch).catch((err: Error) => {
      this.fallback.inc(batch.size);
      this.shared.failed(err);
    }).finally(() => {
      this.sending = false;
    });
  }

  /** Refuses `key` until `until`: some worker emptied its shared bucket. */
  block(key: string, until: number): void {
    if (this.blocked.size < MAX_BLOCKED_KEYS || this.blocked.has(key)) this.blocked.set(key, until);
    else this.fallback.inc(); // too many keys at once: this worker's own bucket limits the rest
  }

  private sweep(now = Date.now()): void {
    for (const [key, until] of this.blocked) if (until <= now) this.blocked.delete(key);
  }

  close(): void {
    clearInterval(this.timer);
    this.local.close();
  }
}
