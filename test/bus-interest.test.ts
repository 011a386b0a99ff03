// cluster/bus-interest.ts: a publish that no other broker subscribes to stays on its
// broker, and a subscription acknowledged on one broker gets every publish made
// after its SUBACK on another; two emitters on a real redis-server.
import t from 'tap';
import { Redis } from 'ioredis';
import type { BusEmitter } from '../cluster/bus-emitter.js';
import type { BusPacket } from '../cluster/bus-frame.js';
import { BusInterest, LEASE_MS, rootOf } from '../cluster/bus-interest.js';
import { twoEmitters } from './helpers/bus-emitters.js';
import { startRedis } from './helpers/redis.js';
import { until } from './helpers/wait.js';

const packet = (topic: string, n = 1): BusPacket => ({ cmd: 'publish', topic, payload: Buffer.from(`${topic} ${n}`), qos: 0, retain: false, dup: false, brokerId: 'a', brokerCounter: n });
const send = (e: BusEmitter, topic: string, n = 1) => new Promise<void>((r) => e.emit(packet(topic, n), () => r()));
const subscribe = (e: BusEmitter, filter: string, got: string[]) => new Promise<void>((r) => e.on(filter, (p, done) => { got.push(p.topic); done(); }, r));
const publishes = async (conn: Redis) => Number(/cmdstat_publish:calls=(\d+)/.exec(String(await conn.call('INFO', 'commandstats')))?.[1] ?? 0);

t.test('the root of a topic or filter', async (t) => {
  t.equal(rootOf('devices/a/telemetry'), 'devices');
  t.equal(rootOf('devices/#'), 'devices');
  t.equal(rootOf('solo'), 'solo');
  t.equal(rootOf('/leading'), '');
  t.equal(rootOf('#'), '*', 'a filter that starts with a wildcard wants everything');
  t.equal(rootOf('+/status'), '*');
});

t.test('a publish no other broker subscribes to stays on its broker; one that another wants goes to Redis', async (t) => {
  const { a, b, conns } = await twoEmitters(t);
  const here: string[] = [];
  const there: string[] = [];
  await subscribe(a, 'here/+', here);
  await subscribe(b, 'there/#', there);
  // The first publish of a root no one else wants is kept local once a's view of b is read.
  await until('a knows what b wants', () => { a.emit(packet('nobody/x')); return a.keptLocal > 0; });
  const kept = a.keptLocal;
  const before = await publishes(conns[0]!);

  await send(a, 'here/1');
  await send(a, 'there/sentinel');
  await until('the sentinel on b', () => there.length === 1);
  await until('here/1 on a', () => here.includes('here/1'));
  t.same(there, ['there/sentinel'], 'b got only what it subscribed to');
  t.equal(a.keptLocal - kept, 1, 'here/1 was kept on a');
  t.equal(await publishes(conns[0]!) - before, 1, 'one PUBLISH: the sentinel only');
});

t.test('a subscription acknowledged on one broker gets every publish made after its SUBACK on another, for roots never seen before', async (t) => {
  const { a, b } = await twoEmitters(t);
  await until('a has a view', () => { a.emit(packet('warm-up/x')); return a.keptLocal > 0; });
  for (let i = 0; i < 6; i++) {
    const got: string[] = [];
    const started = Date.now();
    await subscribe(b, `fresh-${i}/+`, got);
    t.ok(Date.now() - started >= LEASE_MS, `fresh-${i}: the SUBACK waited a lease for a new root`);
    await send(a, `fresh-${i}/x`); // at once: a's view may be older than the subscription
    await until(`fresh-${i}/x on b`, () => got.length === 1);
  }
  const got: string[] = [];
  const started = Date.now();
  await subscribe(b, 'fresh-0/again', got);
  t.ok(Date.now() - started < LEASE_MS, 'a root the entry holds already: no wait');
});

t.test('a broker past its roots announces everything', async (t) => {
  const { a, b, conns } = await twoEmitters(t);
  const none: string[] = [];
  // 300 roots on b, at once: their writes queue behind each other and their leases overlap.
  await Promise.all(Array.from({ length: 300 }, (_, k) => subscribe(b, `root-${k}/x`, none)));
  const got: string[] = [];
  await subscribe(b, 'late/x', got);
  await until('b\'s entry says everything', async () => (await conns[0]!.get('credbroker:interest:broker-2')) === '["*"]');
  const kept = a.keptLocal;
  for (let k = 0; k < 5; k++) await send(a, `unheard-of-${k}/x`);
  t.equal(a.keptLocal, kept, 'every root goes to Redis');
  await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
  const started = Date.now();
  await subscribe(b, 'one-more-root/x', none);
  t.ok(Date.now() - started < LEASE_MS, 'and a new root on b waits no more');
  await send(a, 'late/x');
  await until('late/x on b', () => got.length === 1);
  t.same(none, [], 'nothing matched the other roots');
});

t.test('after an outage that emptied Redis, a broker announces its roots again at once', async (t) => {
  const redis = await startRedis(t);
  const [c1, c2] = [new Redis(redis.url), new Redis(redis.url)];
  const [one, two] = [new BusInterest(c1, 'one'), new BusInterest(c2, 'two')];
  t.teardown(() => { one.close(); two.close(); c1.disconnect(); c2.disconnect(); });
  await one.add('kept/#');
  // A trusted view on two: it wants kept/…, and an unrelated root stays local.
  await until('two knows what one wants', () => two.wants('kept/x') && !two.wants('other/x'));
  await c1.flushall();
  await until('two has read the empty Redis', () => !two.wants('kept/x'));
  one.reannounce();
  // Well before the periodic write (every 5 s).
  await until('two knows again', () => two.wants('kept/x') && !two.wants('other/x'), 2_000);
  t.pass('announced again');
});

t.test('a second subscription under a root being announced waits for the same lease as the first', async (t) => {
  const { a, b, conns } = await twoEmitters(t);
  await until('a has a view', () => { a.emit(packet('warm-up/x')); return a.keptLocal > 0; });
  const got: string[] = [];
  let firstAt = 0;
  const first = new Promise<void>((r) => b.on('twice/a', (p, done) => { got.push(p.topic); done(); }, () => { firstAt = Date.now(); r(); }));
  // The entry has the root (its write answered), the lease has not passed yet.
  await until('b\'s entry names the root', async () => (await conns[0]!.get('credbroker:interest:broker-2'))?.includes('"twice"') ?? false);
  await subscribe(b, 'twice/b', got);
  const secondAt = Date.now();
  await first;
  t.ok(secondAt >= firstAt, 'the second SUBACK did not come before the first one\'s lease');
  await send(a, 'twice/b');
  await until('twice/b on b', () => got.includes('twice/b'));
});
