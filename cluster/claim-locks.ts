import { Redis } from 'ioredis';
import { RegistryUnavailableError } from '../errors/index.js';
import type { ClaimLock, ClaimLocks, Logger } from '../broker/index.js';
import { endConnection } from './redis-connection.js';
import { COMMAND_TIMEOUT_MS, redisOptions, type RedisTarget } from './redis-options.js';

/** The Redis key of a device id's claim session: present while some broker of the bus holds one for it. */
export const claimLockKey = (deviceId: string) => `credbroker:claim-session:${deviceId}`;

/**
 * Takes the key unless it holds a live lock: `<holder>|<ms>` written within the
 * last ARGV[2] ms by Redis' clock (one clock for every node). A value that does
 * not parse, is dated in the future or older than that is no lock (one written
 * into Redis by hand without a TTL would otherwise hold the id for good).
 * Returns the value written, or false when the id is held.
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local cur = redis.call('GET', KEYS[1])
if cur then
  local at = tonumber(string.match(cur, '|(%d+)$'))
  if at ~= nil and at <= now and now - at < ttl then return false end
end
local v = ARGV[1] .. '|' .. now
redis.call('SET', KEYS[1], v, 'PX', ttl)
return v`;
// Deletes the key only while it still holds this lock: a later session's (after ours lapsed) stays.
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

type Take = (key: string, holder: string, ttlMs: number) => Promise<string | null>;
type Release = (key: string, value: string) => Promise<number>;

/**
 * One claim session per device id across every worker and node on one Redis
 * (broker/claim-locks.ts says why). The value names the node and the connection
 * (`<broker id>:<sequence>|<ms>`), so an operator can see who holds an id.
 *
 * Redis is trusted for this decision only as far as delay: whoever can write to
 * it can keep an id's claim sessions refused (CONNACK 5) for as long as they keep
 * writing fresh values, never longer than CLAIM_LOCK_MS after they stop, and can
 * never make a second session for one id accepted while the first is open on
 * another node, nor close one. Authenticating the values (a MAC with the cluster
 * key) would make forged ones ignorable: `holder` is where it would go.
 *
 * Redis unreachable: the CONNECT is refused (CONNACK 3, try again), since
 * uniqueness cannot be decided; token CONNECTs are not affected.
 */
export class RedisClaimLocks implements ClaimLocks {
  private readonly redis: Redis;
  private readonly takeCmd: Take;
  private readonly releaseCmd: Release;
  private seq = 0;

  constructor(target: RedisTarget, private readonly holderPrefix: string, log: Logger) {
    // Fail at once while disconnected: a CONNECT must not wait on a Redis that is away.
    this.redis = new Redis(target.url, redisOptions(target, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: COMMAND_TIMEOUT_MS, retryStrategy: (n) => Math.min(n * 200, 2000), connectionName: `credbroker:claims:${holderPrefix}` }));
    this.redis.on('error', (err: Error) => log.debug({ event: 'cluster.claim_locks_error', err: err.message }, 'claim locks: Redis error'));
    this.redis.defineCommand('credbrokerClaimTake', { numberOfKeys: 1, lua: TAKE });
    this.redis.defineCommand('credbrokerClaimRelease', { numberOfKeys: 1, lua: RELEASE });
    const cmds = this.redis as unknown as { credbrokerClaimTake: Take; credbrokerClaimRelease: Release };
    this.takeCmd = cmds.credbrokerClaimTake.bind(this.redis);
    this.releaseCmd = cmds.credbrokerClaimRelease.bind(this.redis);
  }

  /** Resolves once Redis answers (a worker starts serving only then). */
  ready(): Promise<void> {
    return this.redis.status === 'ready' ? Promise.resolve() : new Promise((r) => this.redis.once('ready', () => r()));
  }

  async take(deviceId: string, ttlMs: number): Promise<ClaimLock | null> {
    const key = claimLockKey(deviceId);
    let value: string | null;
    try {
      value = await this.takeCmd(key, `${this.holderPrefix}:${++this.seq}`, ttlMs);
    } catch (err) {
      throw new RegistryUnavailableError('the cluster bus is unreachable: claim sessions wait for it', { cause: err });
    }
    if (value === null) return null;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.releaseCmd(key, value).catch(() => {}); // Redis away: the lock lapses by its TTL
      },
    };
  }

  /** After the broker has closed (its sessions' locks released). */
  close(): Promise<void> {
    return endConnection(this.redis);
  }
}
