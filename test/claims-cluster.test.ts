// One claim session per id across workers and nodes (issue #19 finding 3, SPEC
// "Scaling out"): `serve --workers 2 --bus` and two `serve --bus` nodes on one real
// redis-server. Unit A connects, subscribes and asks; clone B sends CONNECT and
// SUBSCRIBE for the same id in one write. B never gets CONNACK 0 while A is open,
// never the answer; A always gets it.
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { connect } from './helpers/broker.js';
import { claimSessionOpen, rawClaimAttempt, type RawClaimOutcome } from './helpers/claim-client.js';
import { startCluster, until, type TestCluster, type Topology } from './helpers/cluster.js';
import { pool } from './helpers/hostile-util.js';
import { createClaim } from '../operations/index.js';

t.setTimeout(600_000); // two clusters of serve processes and a Redis each: slow on a loaded 2-core box

const TRIALS = 30;
/** Every unit here comes from 127.0.0.1: the per-address limits, and the refusal lines the test reads, sized for it. */
const ENV = {
  CREDBROKER_CLAIM_CONNECT_ADDRESS_BURST: '1000', CREDBROKER_CLAIM_ADDRESS_BURST: '1000',
  CREDBROKER_CLAIM_CONNECT_BURST: '1000', CREDBROKER_CLAIM_BURST: '1000',
  CREDBROKER_REFUSAL_LOG_BURST: '1000', CREDBROKER_REFUSAL_LOG_MAX_PER_SEC: '1000',
};

interface Trial {
  readonly id: string;
  readonly a: { code: number; answer: Record<string, unknown> | null; topic: string | null };
  readonly b: RawClaimOutcome;
}

/** One race: A on `c.url(nodeA)` asks while B's CONNECT+SUBSCRIBE reaches node `nodeB`. */
async function race(c: TestCluster, id: string, credential: string, nodeA: number, nodeB: number): Promise<Trial> {
  const a = await connect(c.url(nodeA), { clientId: id, username: 'claim:line', password: credential });
  if (!a.client) return { id, a: { code: a.code, answer: null, topic: null }, b: { code: null, published: [], closed: false } };
  const client = a.client;
  client.on('error', () => {});
  const got = new Promise<{ topic: string; body: Record<string, unknown> }>((res) => {
    client.once('message', (topic, payload) => res({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }));
  });
  await client.subscribeAsync(`$claims/${id}/provision/+`, { qos: 1 });
  const b = rawClaimAttempt(c.nodes[nodeB]!.mqttPort, { id, claim: 'line', credential, holdMs: 3000 });
  client.publish(`$claims/${id}/provision`, JSON.stringify({ requestId: `req-${id}` }), { qos: 1 });
  const answer = await Promise.race([got, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
  const outcome = await b;
  client.end(true);
  return { id, a: { code: 0, answer: answer?.body ?? null, topic: answer?.topic ?? null }, b: outcome };
}

function check(t: Test, trials: Trial[]): void {
  const bAccepted = trials.filter((x) => x.b.code === 0).map((x) => x.id);
  t.same(bAccepted, [], 'B never got CONNACK 0');
  t.same(trials.filter((x) => x.b.code !== 5).map((x) => `${x.id}: ${x.b.code}`), [], 'B always got CONNACK 5');
  t.same(trials.filter((x) => !x.b.closed).map((x) => x.id), [], 'B\'s connection was closed by the broker every time (nothing can reach it after that)');
  t.same(trials.flatMap((x) => x.b.published), [], 'B never received a PUBLISH: never the answer');
  t.same(trials.filter((x) => !(x.a.topic?.endsWith('/accepted') && x.a.answer?.deviceId === x.id && x.a.answer?.requestId === `req-${x.id}`)).map((x) => `${x.id}: ${x.a.topic}`), [],
    'A always got its credentials set');
}

async function clusterWithClaim(t: Test, topology: Topology): Promise<{ c: TestCluster; credential: string }> {
  const c = await startCluster(t, topology, { env: ENV });
  const { credential } = await createClaim(c.nodes[0]!.issuer.reg, { name: 'line', profile: 'sensor', brokerUrl: c.url(), maxDevices: 1000 });
  return { c, credential };
}

t.test(`${TRIALS} races on serve --workers 2 --bus`, async (t) => {
  const { c, credential } = await clusterWithClaim(t, 'workers');
  const ids = Array.from({ length: TRIALS }, (_, i) => `wrace-${String(i).padStart(2, '0')}`);
  const trials = await pool(ids, 6, (id) => race(c, id, credential, 0, 0));
  check(t, trials);
  // Where each went: A's session from its debug line, B's refusal from its info line (both name the worker).
  const records = c.nodes[0]!.records();
  const workerOf = (id: string, event: string) => records.find((r) => r.event === event && r.device === id)?.worker;
  const across = ids.filter((id) => workerOf(id, 'auth.refused') !== undefined && workerOf(id, 'auth.refused') !== workerOf(id, 'session.open')).length;
  t.ok(across > 0, `B reached the other worker than A in ${across} of ${TRIALS} trials`);
});

t.test(`${TRIALS} races across two nodes (two serve --bus on one Redis)`, async (t) => {
  const { c, credential } = await clusterWithClaim(t, 'nodes');
  const ids = Array.from({ length: TRIALS }, (_, i) => `nrace-${String(i).padStart(2, '0')}`);
  check(t, await pool(ids, 6, (id) => race(c, id, credential, 0, 1)));

  t.test('the id is free on every node once the session has gone', async (t) => {
    const first = await claimSessionOpen(c.url(0), { id: 'free-1', claim: 'line', credential });
    t.equal((await rawClaimAttempt(c.nodes[1]!.mqttPort, { id: 'free-1', claim: 'line', credential })).code, 5, 'held on node 0: refused on node 1');
    await first.endAsync();
    let code: number | null = null;
    await until('node 1 to accept a claim session for free-1', async () => {
      code = (await rawClaimAttempt(c.nodes[1]!.mqttPort, { id: 'free-1', claim: 'line', credential, holdMs: 0 })).code;
      return code === 0;
    });
    t.equal(code, 0, 'accepted on node 1');
  });

  t.test('what Redis holds: a stale value is no lock; a fresh one delays, for its TTL at most', async (t) => {
    const redis = new Redis(c.redis.url);
    t.teardown(() => redis.quit());
    await redis.set('credbroker:claim-session:stale-1', 'forged|1');
    t.equal((await rawClaimAttempt(c.nodes[1]!.mqttPort, { id: 'stale-1', claim: 'line', credential, holdMs: 0 })).code, 0, 'a value dated long ago (and kept for ever) is ignored');
    const [sec] = await redis.time();
    await redis.set('credbroker:claim-session:fresh-1', `forged|${Number(sec) * 1000}`, 'PX', 1500);
    t.equal((await rawClaimAttempt(c.nodes[0]!.mqttPort, { id: 'fresh-1', claim: 'line', credential })).code, 5, 'a fresh value written into Redis refuses the id while it lasts');
    await until('the written value to lapse', async () => (await rawClaimAttempt(c.nodes[0]!.mqttPort, { id: 'fresh-1', claim: 'line', credential, holdMs: 0 })).code === 0, 20_000);
    t.pass('and the id is claimable once it lapses');
  });
});
