// The seams a worker of a node needs (issue 13, STYLE-NOTES "Cluster seams";
// issue 19: never through Redis): the per-key rate limits counted for the
// whole node by its primary over IPC, so that N workers do not grant N times a
// limit, each worker limiting on its own while its primary cannot be reached
// (never failing a CONNECT); and the theft response reaching a device on
// another worker through the registry's change feed. Here one process holds
// the primary's NodeLimits and the workers' SharedLimits, joined by a channel
// that carries their messages as JSON a turn later, as node:cluster's does;
// two brokers on one SQLite file stand for two workers. The same over real
// `serve --workers 2` processes: cluster-node-limits.test.ts.
import { readdirSync, readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import type { MqttClient } from 'mqtt';
import { validateConfig, type BrokerConfig } from '../broker/index.js';
import { rateLimits } from '../broker/limits.js';
import { BrokerMetrics } from '../broker/metrics.js';
import type { RateLimiter } from '../broker/rate-limit.js';
import type { ToPrimary } from '../cluster/ipc.js';
import { NodeLimits } from '../cluster/node-limits.js';
import { SharedLimits } from '../cluster/shared-limits.js';
import { workerShare } from '../cluster/worker-share.js';
import type { DeviceId } from '../registry/index.js';
import { closed, connect, connectDevice, startTestBroker } from './helpers/broker.js';
import { renewalSession } from './helpers/renewal-session.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 10_000) => {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (await check()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
};

async function fallbacks(metrics: BrokerMetrics): Promise<number> {
  const m = await metrics.sharedLimitFallbacks.get();
  return m.values.reduce((n, v) => n + v.value, 0);
}

/**
 * A node in this process: the primary's NodeLimits and `workers` SharedLimits.
 * `up = false` stands for a primary gone (the worker's send fails).
 * `settle(limiter, name)`: takes a sentinel key on `limiter` and resolves once
 * the primary has counted it and its answer reached every worker, so that
 * everything taken on that limiter before has too.
 */
function inProcessNode(t: Test, settings: Partial<BrokerConfig>, workers = 2) {
  const primary = new NodeLimits(rateLimits(validateConfig(settings)));
  const seen = new Set<string>();
  const state = { up: true };
  const wire = <T>(m: T): T => JSON.parse(JSON.stringify(m)) as T;
  const all: SharedLimits[] = [];
  const send = (m: ToPrimary): boolean => {
    if (!state.up) return false;
    const copy = wire(m);
    setImmediate(() => {
      if (copy.credbroker !== 'took') return;
      const empty = primary.took(copy.counts);
      if (empty) for (const w of all) w.heard(wire(empty));
      for (const list of Object.values(copy.counts)) for (const [key] of list) seen.add(key);
    });
    return true;
  };
  for (let i = 0; i < workers; i++) all.push(new SharedLimits(send));
  t.teardown(() => { for (const w of all) w.close(); primary.close(); });
  let sentinels = 0;
  return {
    workers: all,
    state,
    async settle(limiter: RateLimiter, name = 'sentinel'): Promise<void> {
      const key = `${name}-${++sentinels}`;
      t.ok(limiter.take(key), `sentinel ${key} taken`);
      await until(`the primary to count ${key}`, () => seen.has(key));
    },
  };
}

t.test('two workers count one bucket per key at their primary; a key one worker emptied is refused by the other', async (t) => {
  const node = inProcessNode(t, { deviceConnectBurst: 10, deviceConnectPerSec: 0.5 });
  const metrics = new BrokerMetrics();
  const [la, lb] = node.workers.map((w) => w.limiters('deviceConnects', 10, 0.5, metrics)) as [RateLimiter, RateLimiter];
  t.teardown(() => { la.close(); lb.close(); });
  for (let i = 0; i < 5; i++) t.ok(la.take('dev-1') && lb.take('dev-1'), `take ${i + 1} on each worker`);
  await node.settle(la);
  await node.settle(lb);
  t.notOk(la.take('dev-1'), 'worker A refuses: the two together spent the burst of 10');
  t.notOk(lb.take('dev-1'), 'worker B refuses too');
  t.notOk(la.allows('dev-1') || lb.allows('dev-1'), 'allows() agrees');
  t.notOk(la.isEmpty(), 'a limited key: not empty');
  t.ok(la.take('dev-2') && lb.take('dev-2'), 'other keys are untouched');
  t.equal(await fallbacks(metrics), 0, 'nothing fell back');
});

t.test('primary unreachable: each worker limits on its own, nothing throws; back: counted together again', async (t) => {
  const node = inProcessNode(t, { authFailBurst: 4, authFailPerSec: 2 });
  const metrics = new BrokerMetrics();
  const [la, lb] = node.workers.map((w) => w.limiters('authFailures', 4, 2, metrics)) as [RateLimiter, RateLimiter];
  t.teardown(() => { la.close(); lb.close(); });
  node.state.up = false;
  for (let i = 0; i < 4; i++) t.ok(la.take('10.0.0.1') && lb.take('10.0.0.1'), `primary gone, take ${i + 1}: each worker's own bucket`);
  t.notOk(la.take('10.0.0.1'), 'primary gone: still limited, by the worker alone');
  await until('the unsent counts to be counted', async () => await fallbacks(metrics) > 0);
  t.pass('the unsent counts are counted in credbroker_shared_limit_fallbacks_total');
  node.state.up = true;
  for (let i = 0; i < 2; i++) t.ok(la.take('10.0.0.9') && lb.take('10.0.0.9'), `back: take ${i + 1} on each worker`);
  await node.settle(la);
  await node.settle(lb);
  t.notOk(la.allows('10.0.0.9'), 'back: the key the two workers emptied together is refused');
});

t.test('a device cycling over two workers meets one connect-rate limit', async (t) => {
  const config = { deviceConnectBurst: 4, deviceConnectPerSec: 0.1 };
  const node = inProcessNode(t, config);
  const a = await startTestBroker(config, { limiters: node.workers[0]!.limiters });
  t.teardown(() => a.close());
  const b = await startTestBroker(config, { db: a.db, limiters: node.workers[1]!.limiters });
  t.teardown(() => b.close());
  const [creds] = await a.provision(['cyc-1']);
  const codes: number[] = [];
  for (let i = 0; i < 8; i++) {
    const worker = i % 2 ? b : a;
    const { client, code } = await connectDevice(worker.url, creds!);
    codes.push(code);
    if (client) await client.endAsync();
    await node.settle(worker.broker.context.deviceConnects);
  }
  t.same(codes.slice(0, 4), [0, 0, 0, 0], 'the burst of 4, over both workers');
  t.ok(codes.slice(4).every((c) => c === 5), `then refused on either worker (${codes.join(',')}); each alone would have let 4 more in`);
});

t.test('a refusal announced to a worker lasts no longer than the node\'s own limit implies; malformed ones change nothing', async (t) => {
  const node = inProcessNode(t, {}, 1);
  const worker = node.workers[0]!;
  const metrics = new BrokerMetrics();
  const limiter = worker.limiters('deviceConnects', 10, 0.5, metrics); // one token every 2 s
  t.teardown(() => limiter.close());
  const now = Date.now();
  worker.heard({ credbroker: 'empty', keys: { deviceConnects: [['dev-9', 600_000]] } }, now);
  t.notOk(limiter.allows('dev-9', now + 1000), 'refused while the node\'s bucket could still be empty');
  t.ok(limiter.allows('dev-9', now + 2001), 'not past one token\'s refill (2 s), whatever the announcement said (600 s)');
  const malformed: unknown[] = [
    null, 'empty', { credbroker: 'empty' }, { credbroker: 'empty', keys: null }, { credbroker: 'empty', keys: 'x' },
    { credbroker: 'empty', keys: { deviceConnects: 'dev-1' } }, { credbroker: 'empty', keys: { deviceConnects: [['dev-1']] } },
    { credbroker: 'empty', keys: { deviceConnects: [['dev-1', -5], ['dev-1', Number.NaN], ['dev-1', '600000'], [5, 600_000], 'dev-1'] } },
    { credbroker: 'empty', keys: { __proto__: [['dev-1', 600_000]], toString: [['dev-1', 600_000]], nosuch: [['dev-1', 600_000]] } },
    { credbroker: 'took', counts: { deviceConnects: [['dev-1', 600_000]] } },
  ];
  for (const m of malformed) worker.heard(m);
  t.ok(limiter.allows('dev-1'), 'dev-1 still has a token after every malformed message');
  const primary = new NodeLimits(rateLimits(validateConfig({})));
  t.teardown(() => primary.close());
  for (const m of malformed) t.equal(primary.took((m as { keys?: unknown } | null)?.keys), null, 'the primary counts nothing from a malformed batch');
  t.same(primary.took({ deviceConnects: [['dev-1', 1e9]] }), { credbroker: 'empty', keys: { deviceConnects: [['dev-1', 2000]] } }, 'a batch of any size empties the bucket and no further: one token\'s wait');
});

t.test('the primary\'s answer names only the keys left empty, per limit', async (t) => {
  const primary = new NodeLimits(rateLimits(validateConfig({ renewBurst: 3, renewPerSec: 1, authFailBurst: 20, authFailPerSec: 2 })));
  t.teardown(() => primary.close());
  const now = Date.now();
  t.equal(primary.took({ renewals: [['r-1', 2]], authFailures: [['10.0.0.1', 19]] }, now), null, 'nothing empty yet');
  const names = (m: ReturnType<NodeLimits['took']>) => (m && m.credbroker === 'empty' ? Object.fromEntries(Object.entries(m.keys).map(([k, v]) => [k, v.map(([key]) => key)])) : null);
  t.same(names(primary.took({ renewals: [['r-1', 1], ['r-2', 1]], authFailures: [['10.0.0.1', 1]] }, now)), { renewals: ['r-1'], authFailures: ['10.0.0.1'] }, 'the two keys that reached their burst');
  t.equal(primary.took({ renewals: [['r-2', 1]] }, now + 1000), null, 'r-2 still had a token');
});

t.test('each worker gets a share of the node-wide caps: together exactly the node\'s setting', async (t) => {
  const config = validateConfig({ maxConnections: 3, maxUnauthenticated: 'auto', maxUnauthenticatedPerAddress: 5, verifyBudgetPerSec: 200, verifyBudgetBurst: 401, deviceConnectBurst: 7 });
  const fd = { soft: 4096, hard: 4096 };
  const shares = [0, 1].map((i) => workerShare(config, 2, i, fd));
  const sum = (k: 'maxConnections' | 'maxUnauthenticatedPerAddress' | 'verifyBudgetPerSec' | 'verifyBudgetBurst') => shares.reduce((n, s) => n + s[k], 0);
  t.same(shares.map((s) => s.maxConnections), [2, 1], 'maxConnections 3: 2 and 1');
  t.same(shares.map((s) => s.maxUnauthenticated), [512, 512], '"auto" (a quarter of 4096 descriptors) resolved for the node, then split');
  t.equal(sum('maxUnauthenticatedPerAddress'), 5, 'per address: 5 in all');
  t.equal(sum('verifyBudgetPerSec'), 200, 'verification budget: 200/s in all');
  t.equal(sum('verifyBudgetBurst'), 401, 'and a burst of 401 in all');
  t.ok(shares.every((s) => s.deviceConnectBurst === 7 && s.workers === config.workers), 'the per-key rate limits and the rest are left whole (the primary counts those)');
  t.same([0, 1, 2].map((i) => workerShare(config, 3, i, fd).maxConnections), [1, 1, 1], 'never below 1 a worker: 3 over 3');
  t.same([0, 1, 2, 3].map((i) => workerShare(config, 4, i, fd).maxConnections), [1, 1, 1, 1], 'below the number of workers, one each (documented)');
  const big = validateConfig({ maxConnections: 100_000 });
  t.same([0, 1, 2].map((i) => workerShare(big, 3, i, null).maxConnections), [33_334, 33_333, 33_333], '100,000 over 3: the first takes the remainder');
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
    t.notMatch(src, /from '(ioredis|aedes-persistence-redis)'|from '\.\.\/cluster\//, f);
  }
});
