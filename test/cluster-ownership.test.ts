// Client-id ownership on the bus (cluster/ownership.ts) against a real
// redis-server: a claim key expires unless its broker renews it, so a worker
// killed with -9 leaves none past the TTL while a live worker's stay; and
// connections of one device racing across two workers leave no session listed
// once every connection is gone (issue 19, and the flake of "revocation closes
// sessions on every worker": a connection closed by a takeover while its CONNECT
// was finishing stayed in /sessions for good).
import t from 'tap';
import { Redis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import { CLAIM_TTL_MS } from '../cluster/ownership.js';
import { connectDevice } from './helpers/broker.js';
import { until } from './helpers/cluster.js';
import { startRedis } from './helpers/redis.js';
import { startServe } from './helpers/serve-process.js';

/** `<host>-<pid>-<hex>|<seq>|<ms>`: the pid of the worker that made a claim. */
const pidOf = (claim: string) => Number(claim.split('|')[0]!.split('-').at(-2));

t.test('ownership keys expire: a worker killed with -9 leaves none after the TTL; a live worker renews its own', async (t) => {
  const redis = await startRedis(t);
  const serve = await startServe(['--workers', '2', '--bus', redis.url, '--log-format', 'json']);
  t.teardown(() => serve.stop());
  const r = new Redis(redis.url);
  t.teardown(() => r.disconnect());
  const ids = Array.from({ length: 50 }, (_, i) => `own-${i}`);
  const devs = await serve.provision(ids);
  const clients: MqttClient[] = [];
  t.teardown(() => { for (const c of clients) c.end(true); });
  const codes: number[] = [];
  for (const dev of devs) {
    const c = await connectDevice(`mqtt://127.0.0.1:${serve.mqttPort}`, dev);
    codes.push(c.code);
    if (c.client) clients.push(c.client);
  }
  t.same(codes, ids.map(() => 0), 'the 50 devices connect');
  const keys = ids.map((id) => `credbroker:owner:${id}`);
  await until('every claim written', async () => (await r.exists(...keys)) === 50);
  const ttls = await Promise.all(keys.map((k) => r.pttl(k)));
  t.ok(ttls.every((ms) => ms > 0 && ms <= CLAIM_TTL_MS), `every claim has a TTL (${Math.min(...ttls)}–${Math.max(...ttls)} ms)`);

  const claims = await r.mget(...keys);
  const byPid = new Map<number, string[]>();
  for (const [i, claim] of claims.entries()) byPid.set(pidOf(claim!), [...(byPid.get(pidOf(claim!)) ?? []), keys[i]!]);
  t.equal(byPid.size, 2, 'the devices are spread over both workers');
  const [[victim, lost], [, kept]] = [...byPid.entries()].sort((a, b) => b[1].length - a[1].length) as [[number, string[]], [number, string[]]];
  const killedAt = Date.now();
  process.kill(victim, 'SIGKILL');
  await until(`the ${lost.length} claims of the killed worker to lapse`, async () => (await r.exists(...lost)) === 0, CLAIM_TTL_MS + 15_000);
  t.pass(`the ${lost.length} claims of worker ${victim} are gone ${Date.now() - killedAt} ms after kill -9`);
  // Past a whole TTL since they were made: they are there only because their broker renewed them.
  await new Promise((res) => setTimeout(res, Math.max(0, CLAIM_TTL_MS + 2000 - (Date.now() - killedAt))));
  t.equal(await r.exists(...kept), kept.length, `the ${kept.length} claims of the live worker are still there after the TTL`);
  const keptTtls = await Promise.all(kept.map((k) => r.pttl(k)));
  t.ok(keptTtls.every((ms) => ms > 0), 'and still expire');
});

t.test('connections of one device racing across two workers leave no session listed once all are gone', async (t) => {
  const redis = await startRedis(t);
  const serve = await startServe(['--workers', '2', '--bus', redis.url, '--log-format', 'json'], { CREDBROKER_DEVICE_CONNECT_BURST: '1000' });
  t.teardown(() => serve.stop());
  const url = `mqtt://127.0.0.1:${serve.mqttPort}`;
  const devs = await serve.provision(Array.from({ length: 10 }, (_, i) => `race-${i}`));
  const sessions = async () => ((await (await fetch(`http://127.0.0.1:${serve.httpPort}/sessions`)).json()) as { sessions: { deviceId: string }[] }).sessions;
  for (let round = 0; round < 4; round++) {
    // Each device twice at once: the primary hands the two to different workers, and the ownership takeover closes one.
    const pairs = await Promise.all(devs.flatMap((d) => [connectDevice(url, d), connectDevice(url, d)]));
    await new Promise((res) => setTimeout(res, 1000));
    for (const p of pairs) p.client?.end(true);
  }
  await until('no session listed', async () => (await sessions()).length === 0, 20_000).then(() => t.pass('no session listed'), async (err: Error) => {
    t.fail(`${err.message}: still listed ${JSON.stringify((await sessions()).map((s) => s.deviceId))}`);
  });
  const metrics = await (await fetch(`http://127.0.0.1:${serve.httpPort}/metrics`)).text();
  t.match(metrics, /^credbroker_connected_clients 0$/m, 'and none counted');
});
