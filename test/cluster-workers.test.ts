// `serve --workers 2 --bus redis://…` against a real redis-server: delivery
// between workers, the node's /metrics (added up over workers) and /readyz,
// client-id takeover across workers (one connection survives, also when both
// arrive at once), and revocation closing sessions on every worker.
import t from 'tap';
import { createRequire } from 'node:module';
import type { MqttClient } from 'mqtt';
import { provisionDevices } from '../provisioning/index.js';
import { closed, connectDevice, startTestBroker } from './helpers/broker.js';
import { runCli } from './helpers/cli.js';
import { startRedis } from './helpers/redis.js';
import { startServe } from './helpers/serve-process.js';

const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 15_000) => {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
};

t.test('without a bus the broker is one process with no Redis client loaded', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const [dev] = await tb.provision(['solo-1']);
  const r = await connectDevice(tb.url, dev!);
  t.equal(r.code, 0);
  r.client!.end(true);
  const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => /[/\\](ioredis|aedes-persistence-redis)[/\\]/.test(k));
  t.same(loaded, [], 'ioredis and aedes-persistence-redis never loaded');
});

t.test('two workers on a Redis bus behave as one broker', async (t) => {
  const redis = await startRedis(t);
  const serve = await startServe(['--workers', '2', '--bus', redis.url, '--log-format', 'json']);
  t.teardown(() => serve.stop());
  const url = `mqtt://127.0.0.1:${serve.mqttPort}`;
  const ops = (path: string) => fetch(`http://127.0.0.1:${serve.httpPort}${path}`);
  const clients: MqttClient[] = [];
  t.teardown(() => { for (const c of clients) c.end(true); });
  const open = async (creds: { deviceId: string; accessToken: string }) => {
    const r = await connectDevice(url, creds);
    t.equal(r.code, 0, `${creds.deviceId} connects`);
    clients.push(r.client!);
    return r.client!;
  };

  t.match(serve.stderr(), /2 worker\(s\) on bus redis:\/\/127\.0\.0\.1:\d+/, 'the ready line names the workers and the bus');
  const ready = await ops('/readyz');
  t.equal(ready.status, 200, '/readyz: every worker up, the bus connected');
  t.match(await ready.json(), { status: 'ready', workers: { ready: 2, expected: 2 } });

  await t.test('delivery between workers (QoS 0 and 1)', async (t) => {
    // The primary hands connections to the workers in turn: of 4 observers and 4 sensors,
    // most pairs sit on different workers, and every observer must get every message.
    const observers = (await provisionDevices(serve.issuer, [0, 1, 2, 3].map((i) => ({ line: i + 2, id: `obs-${i}` })), { profile: 'observer', brokerUrl: url })).provisioned;
    const sensors = await serve.provision(['sen-0', 'sen-1', 'sen-2', 'sen-3']);
    const got = new Map<string, Set<string>>();
    for (const o of observers) {
      const c = await open(o);
      got.set(o.deviceId, new Set());
      c.on('message', (topic, payload) => got.get(o.deviceId)!.add(`${topic} ${payload.toString()}`));
      await c.subscribeAsync('devices/+/telemetry', { qos: 1 });
    }
    const pubs = await Promise.all(sensors.map(open));
    for (const [i, p] of pubs.entries()) {
      await p.publishAsync(`devices/sen-${i}/telemetry`, 'q0', { qos: 0 });
      await p.publishAsync(`devices/sen-${i}/telemetry`, 'q1', { qos: 1 });
    }
    await until('every observer to get all 8 messages', () => [...got.values()].every((s) => s.size === 8));
    t.pass('every observer got every sensor\'s QoS 0 and QoS 1 message');

    const metrics = await (await ops('/metrics')).text();
    t.match(metrics, /^credbroker_connected_clients 8$/m, '/metrics adds the workers\' sessions up');
    t.match(metrics, /^credbroker_bus_connected 1$/m, 'bus connected on every worker');
    t.match(metrics, /^credbroker_workers 2$/m, 'the primary\'s own gauge');
    const sessions = await (await ops('/sessions')).json() as { sessions: { deviceId: string }[] };
    t.same(sessions.sessions.map((s) => s.deviceId), ['obs-0', 'obs-1', 'obs-2', 'obs-3', 'sen-0', 'sen-1', 'sen-2', 'sen-3'], '/sessions merges the workers\' sessions');
    for (const c of clients.splice(0)) c.end(true);
  });

  await t.test('takeover across workers: the newer connection wins', async (t) => {
    const [dev] = await serve.provision(['dup-1']);
    const first = await open(dev!);
    const gone = closed(first);
    const second = await open(dev!); // the next connection goes to the other worker
    await gone;
    t.pass('the older connection was closed');
    await new Promise((r) => setTimeout(r, 500));
    t.ok(second.connected, 'the newer connection stays');
    second.end(true);
  });

  await t.test('takeover when both connections arrive at once: exactly one survives', async (t) => {
    const [dev] = await serve.provision(['dup-2']);
    for (let round = 0; round < 5; round++) {
      const pair = await Promise.all([connectDevice(url, dev!), connectDevice(url, dev!)]);
      const live = pair.flatMap((r) => (r.client ? [r.client] : []));
      await new Promise((r) => setTimeout(r, 1000));
      t.equal(live.filter((c) => c.connected).length, 1, `round ${round}: one connection left`);
      for (const c of live) c.end(true);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  await t.test('revocation closes sessions on every worker', async (t) => {
    const ids = ['rev-0', 'rev-1', 'rev-2', 'rev-3'];
    const devs = await serve.provision(ids);
    const conns = await Promise.all(devs.map(open));
    const ends = conns.map((c) => closed(c));
    const revokedAt = Date.now();
    const r = await runCli(['revoke', ...ids, '--db', serve.db, '--reason', 'cluster test']);
    t.equal(r.code, 0, r.stderr);
    const at = await Promise.all(ends);
    t.ok(Math.max(...at) - revokedAt < 10_000, `all 4 sessions closed (slowest ${Math.max(...at) - revokedAt} ms after the revoke started)`);
    await until('no session left', async () => ((await (await ops('/sessions')).json()) as { sessions: unknown[] }).sessions.length === 0);
  });

  t.equal(await serve.stop(), 0, 'SIGTERM drains both workers and the node exits 0');
});

t.test('--workers above 1 without --bus is refused in one line', async (t) => {
  const r = await runCli(['serve', '--workers', '2', '--db', '/nonexistent/x.db']);
  t.equal(r.code, 2);
  t.match(r.stderr, /^credbroker: --workers 2 needs --bus redis:\/\/HOST:PORT/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
});
