// cluster/command-batch.ts on a real redis-server: the commands issued together
// share a pipeline, each gets its own reply or error, and a connection that
// cannot write fails them all (never leaves one waiting).
import t from 'tap';
import { Redis } from 'ioredis';
import { CommandBatch } from '../cluster/command-batch.js';
import { startRedis } from './helpers/redis.js';

t.test('one batch, one pipeline: replies in order, an error to its own command only', async (t) => {
  const redis = await startRedis(t);
  const conn = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  t.teardown(() => conn.disconnect());
  await new Promise((r) => conn.once('ready', r));
  const batch = new CommandBatch(conn);
  await conn.set('a-string', 'x');
  const replies = await Promise.allSettled([
    batch.run((p) => p.set('k1', 'v1', 'GET')),
    batch.run((p) => p.incr('counter')),
    batch.run((p) => p.hget('a-string', 'field')), // WRONGTYPE
    batch.run((p) => p.get('k1')),
  ]);
  t.same(replies.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  t.same(replies.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<unknown>).value), [null, 1, 'v1'], 'each its own reply, in order');
  t.match((replies[2] as PromiseRejectedResult).reason.message, /WRONGTYPE/, 'the failing command alone rejects');

  // Later batches get pipelines of their own.
  t.equal(await batch.run((p) => p.incr('counter')), 2);
  t.equal(await batch.run((p) => p.incr('counter')), 3);
});

t.test('a connection that cannot write rejects every command of the batch', async (t) => {
  const redis = await startRedis(t);
  const conn = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  await new Promise((r) => conn.once('ready', r));
  const batch = new CommandBatch(conn);
  conn.disconnect();
  const replies = await Promise.allSettled([batch.run((p) => p.get('x')), batch.run((p) => p.get('y'))]);
  t.same(replies.map((r) => r.status), ['rejected', 'rejected'], 'both rejected, none left waiting');
});
