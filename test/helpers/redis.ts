import { startRedisServer, type RedisServer, type RedisServerOptions } from '../../bench/lib/redis-server.js';

export { freePort } from '../../bench/lib/free-port.js';

/** A real `redis-server` of a test's own, on a free loopback port, keeping nothing on disk. */
export type TestRedis = RedisServer;

/**
 * Starts a redis-server for one test (`t`), on `port` or a free one, stopped and removed on the test's
 * teardown. A missing redis-server is an error, never a silent skip: the
 * cluster's tests would pass having proven nothing.
 */
export async function startRedis(t: { teardown(fn: () => unknown): void }, port?: number, opts?: RedisServerOptions): Promise<TestRedis> {
  const redis = await startRedisServer(port, opts);
  t.teardown(() => redis.close());
  return redis;
}
