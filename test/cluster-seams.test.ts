// The seams a worker on a bus needs (issue 13, STYLE-NOTES "Cluster seams"):
// the per-key rate limits shared over a real redis-server, so that N workers do
// not grant N times a limit, falling back to each worker's own bucket when Redis
// is gone (never failing a CONNECT); and the theft response reaching a device on
// another worker through the registry's change feed. Two brokers in this process
// on one SQLite file stand for two workers (the bus itself is cluster's).
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import type { MqttClient } from 'mqtt';
import { BrokerMetrics } from '../broker/metrics.js';
import { createLogger } from '../broker/logger.js';
import { SharedLimits } from '../cluster/shared-limits.js';
import type { DeviceId } from '../registry/index.js';
import { closed, connect, connectDevice, startTestBroker } from './helpers/broker.js';
import { startRedis } from './helpers/redis.js';
import { renewalSession } from './helpers/renewal-session.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = createLogger('silent');
/** Long enough for a worker to send what it counted and hear back, on a loaded box. */
const SETTLE_MS = 300;

async function fallbacks(metrics: BrokerMetrics): Promise<number> {
  const m = await metrics.sharedLimitFallbacks.get();
  return m.values.reduce((n, v) => n + v.value, 0);
}

t.test('two workers share one bucket per key; a key one worker emptied is refused by the other', async (t) => {
  const redis = await startRedis(t);
  const [a, b] = [new SharedLimits({ url: redis.url, ca: null }, quiet), new SharedLimits({ url: redis.url, ca: null }, quiet)];
  t.teardown(async () => { await a.close(); await b.close(); });
  const metrics = new BrokerMetrics();
  const la = a.limiters('deviceConnects', 10, 0.5, metrics);
  const lb = b.limiters('deviceConnects', 10, 0.5, metrics);
  t.teardown(() => { la.close(); lb.close(); });
  await sleep(SETTLE_MS); // connected
  for (let i = 0; i < 5; i++) t.ok(la.take('dev-1') && lb.take('dev-1'), `take ${i + 1} on each worker`);
  await sleep(SETTLE_MS);
  t.notOk(la.take('dev-1'), 'worker A refuses: the two together spent the burst of 10');
  t.notOk(lb.take('dev-1'), 'worker B refuses too');
  t.notOk(la.allows('dev-1') || lb.allows('dev-1'), 'allows() agrees');
  t.notOk(la.isEmpty(), 'a limited key: not empty');
  t.ok(la.take('dev-2') && lb.take('dev-2'), 'other keys are untouched');
  t.equal(await fallbacks(metrics), 0, 'nothing fell back');
});

t.test('Redis stopped: each worker limits on its own, nothing throws; Redis back: shared again', async (t) => {
  const redis = await startRedis(t);
  const [a, b] = [new SharedLimits({ url: redis.url, ca: null }, quiet), new SharedLimits({ url: redis.url, ca: null }, quiet)];
  t.teardown(async () => { await a.close(); await b.close(); });
  const metrics = new BrokerMetrics();
  const la = a.limiters('authFailures', 4, 2, metrics);
  const lb = b.limiters('authFailures', 4, 2, metrics);
  t.teardown(() => { la.close(); lb.close(); });
  await sleep(SETTLE_MS);
  await redis.stop();
  for (let i = 0; i < 4; i++) t.ok(la.take('10.0.0.1') && lb.take('10.0.0.1'), `outage, take ${i + 1}: each worker's own bucket`);
  t.notOk(la.take('10.0.0.1'), 'outage: still limited, by the worker alone');
  await sleep(SETTLE_MS);
  t.ok(await fallbacks(metrics) > 0, 'the unshared counts are counted in credbroker_shared_limit_fallbacks_total');
  await redis.restart();
  await sleep(2500); // reconnect backoff
  for (let i = 0; i < 2; i++) t.ok(la.take('10.0.0.9') && lb.take('10.0.0.9'), `back: take ${i + 1} on each worker`);
  await sleep(SETTLE_MS);
  t.notOk(la.allows('10.0.0.9'), 'back: the key the two workers emptied together is refused');
});

t.test('a device cycling over two workers meets one connect-rate limit', async (t) => {
  const redis = await startRedis(t);
  const limits = [new SharedLimits({ url: redis.url, ca: null }, quiet), new SharedLimits({ url: redis.url, ca: null }, quiet)];
  t.teardown(async () => { for (const l of limits) await l.close(); });
  const config = { deviceConnectBurst: 4, deviceConnectPerSec: 0.1 };
  const a = await startTestBroker(config, { limiters: limits[0]!.limiters });
  t.teardown(() => a.close());
  const b = await startTestBroker(config, { db: a.db, limiters: limits[1]!.limiters });
  t.teardown(() => b.close());
  const [creds] = await a.provision(['cyc-1']);
  const codes: number[] = [];
  for (let i = 0; i < 8; i++) {
    const { client, code } = await connectDevice(i % 2 ? b.url : a.url, creds!);
    codes.push(code);
    if (client) await client.endAsync();
    await sleep(SETTLE_MS);
  }
  t.same(codes.slice(0, 4), [0, 0, 0, 0], 'the burst of 4, over both workers');
  t.ok(codes.slice(4).every((c) => c === 5), `then refused on either worker (${codes.join(',')}); each alone would have let 4 more in`);
});

t.test('theft on one worker closes the device\'s session on the other (the change feed)', async (t) => {
  const a = await startTestBroker({ refreshGraceMs: 0, authFailBurst: 1000 });
  t.teardown(() => a.close());
  const b = await startTestBroker({ refreshGraceMs: 0, authFailBurst: 1000 }, { db: a.db });
  t.teardown(() => b.close());
  const [creds] = await a.provision(['th-1']);
  const r0 = creds!.refreshCredential;
  // Rotate twice on worker A: r0 becomes superseded.
  let refresh = r0;
  let token = '';
  for (let i = 0; i < 2; i++) {
    const s = await renewalSession(a.url, 'th-1', refresh);
    const answer = await s.request!();
    t.equal(answer.kind, 'accepted', `rotation ${i + 1}`);
    refresh = answer.body.refreshCredential as string;
    token = answer.body.accessToken as string;
    await s.client!.endAsync();
  }
  const live = await connectDevice(a.url, { deviceId: 'th-1', accessToken: token });
  t.equal(live.code, 0, 'the device is connected to worker A');
  const gone = closed(live.client as MqttClient);
  const replay = await connect(b.url, { clientId: 'th-1', username: 'th-1', password: r0 });
  t.equal(replay.code, 5, 'the superseded refresh credential, replayed on worker B, is refused');
  const at = await Promise.race([gone, sleep(5000).then(() => null)]);
  t.ok(at, 'worker A closed the device\'s session');
  t.equal((await a.issuer.reg.devices.require('th-1' as DeviceId)).status, 'revoked', 'the device is revoked in the shared registry');
  t.equal((await connectDevice(a.url, { deviceId: 'th-1', accessToken: token })).code, 5, 'and refused on worker A from now on');
});

t.test('without a bus nothing loads Redis: no broker/ file imports a Redis client or cluster/', async (t) => {
  const dir = new URL('../broker/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  t.ok(files.length > 20, `${files.length} files read`);
  for (const f of files) {
    const src = readFileSync(new URL(f, dir), 'utf8');
    t.notMatch(src, /from '(ioredis|mqemitter-redis|aedes-persistence-redis)'|from '\.\.\/cluster\//, f);
  }
});
