// The Redis fixture the cluster tests stand on (issue 13): a real redis-server per
// test on a free loopback port, nothing on disk, restartable on the same port for
// outage tests, gone after the test.
import t from 'tap';
import { Redis } from 'ioredis';
import { startRedis } from './helpers/redis.js';

t.test('starts, stops, restarts empty on the same port, and is gone after teardown', async (t) => {
  let pid: number | null = null;
  await t.test('the server', async (t) => {
    const redis = await startRedis(t);
    pid = redis.pid();
    t.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
    const client = new Redis(redis.url, { maxRetriesPerRequest: null, retryStrategy: () => 100, lazyConnect: true });
    client.on('error', () => {}); // the outage below is on purpose
    t.teardown(() => client.disconnect());
    await client.connect();
    await client.set('k', 'v');
    t.equal(await client.get('k'), 'v', 'answers commands');
    await redis.stop();
    t.equal(redis.pid(), null, 'stopped');
    await redis.restart();
    t.equal(await client.get('k'), null, 'restarted on the same port, empty (nothing saved)');
    t.ok(redis.pid(), 'running again');
    pid = redis.pid();
  });
  t.ok(pid, 'it had a pid');
  let alive = true;
  try { process.kill(pid!, 0); } catch { alive = false; }
  t.notOk(alive, 'the process is gone after the test');
});
