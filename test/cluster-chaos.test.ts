// Faults of a node on a Redis bus (issue 13), against a real redis-server and
// `serve --workers 2`: a worker killed with -9 under load; Redis stopped and
// restarted mid-run, with a revocation made during the outage enforced; Redis
// absent at start. No crash, no lost revocation, nothing lost from the registry.
// Generous timeouts, no speed asserts: a loaded 2-core box.
import t from 'tap';
import mqtt, { type MqttClient } from 'mqtt';
import { childPids } from '../bench/lib/proc-stat.js';
import Database from 'better-sqlite3';
import { localRegistryPath, type DeviceId } from '../registry/index.js';
import { closed, connect } from './helpers/broker.js';
import { runCli } from './helpers/cli.js';
import { collect, creds, readyz, startCluster, until } from './helpers/cluster.js';
import { freePort, startRedis } from './helpers/redis.js';
import { startServe, type ServeProcess } from './helpers/serve-process.js';

t.setTimeout(600_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const workerExits = (s: ServeProcess) => s.records().filter((r) => r.event === 'cluster.worker_exited');

t.test('kill -9 of a worker under load: its devices reconnect, the registry keeps everything, the worker comes back', async (t) => {
  const c = await startCluster(t, 'workers');
  const [node] = c.nodes;
  const ids = Array.from({ length: 30 }, (_, i) => `k9-${String(i).padStart(2, '0')}`);
  const devs = await c.provision(ids);
  const before = (await node!.issuer.reg.devices.countByStatus());
  // Devices that reconnect by themselves (as firmware does), each publishing steadily.
  const clients: MqttClient[] = devs.map((d) => mqtt.connect(c.url(), { ...creds(d), protocolVersion: 4, reconnectPeriod: 300, connectTimeout: 10_000 }));
  t.teardown(() => { for (const x of clients) x.end(true); });
  await until('all 30 devices connected', () => clients.every((x) => x.connected), 60_000);
  const load = setInterval(() => { for (const [i, x] of clients.entries()) if (x.connected) x.publish(`devices/${ids[i]}/telemetry`, 'tick', { qos: 0 }); }, 100);
  t.teardown(() => clearInterval(load));
  const workers = childPids(node!.pid);
  t.equal(workers.length, 2, `two workers (${workers.join(', ')})`);
  const victim = workers[1]!;
  const drops = clients.map((x) => new Promise<void>((r) => x.once('close', () => r())));
  process.kill(victim, 'SIGKILL');
  await until('the primary to log the dead worker', () => workerExits(node!).length === 1, 30_000);
  t.match(workerExits(node!)[0], { pid: victim, signal: 'SIGKILL' }, 'logged: worker died, restarting it');
  const dropped = (await Promise.all(drops.map((d) => Promise.race([d.then(() => 1), sleep(3000).then(() => 0)])))).reduce((a: number, b) => a + b, 0);
  t.ok(dropped > 0, `${dropped} devices lost their connection with the worker`);
  await until('every device connected again', () => clients.every((x) => x.connected), 60_000);
  t.pass('all 30 devices reconnected');
  await until('the worker restarted and /readyz ready', async () => (await readyz(node!)) === 200 && childPids(node!.pid).length === 2, 60_000);
  const now = childPids(node!.pid);
  t.notOk(now.includes(victim), `a new worker process (${now.join(', ')})`);
  t.same((await node!.issuer.reg.devices.countByStatus()), before, 'the registry lost nothing: same devices, same statuses');
  for (const id of ids) if ((await node!.issuer.reg.devices.get(id as DeviceId))?.status !== 'active') t.fail(`${id} is not active`);
  const file = localRegistryPath(node!.db); // a PostgreSQL registry is the server's to keep intact
  if (file !== null) {
    const raw = new Database(file, { readonly: true });
    t.equal(raw.pragma('integrity_check', { simple: true }), 'ok', 'the registry file is intact');
    raw.close();
  }
  clearInterval(load);
  // After the restart both workers serve: devices spread over them still reach each other.
  const [obs] = await c.provision(['k9-observer'], 'observer');
  const o = await c.connectOn(creds(obs!));
  await o.client!.subscribeAsync('devices/+/telemetry', { qos: 1 });
  const got = collect(o.client!);
  for (const [i, x] of clients.entries()) x.publish(`devices/${ids[i]}/telemetry`, 'after', { qos: 1 });
  await until('telemetry from every device', () => new Set(got.filter((m) => m.endsWith(' after'))).size === 30, 30_000);
  t.pass('the observer gets telemetry from all 30 devices, wherever they reconnected');
  o.client!.end(true);
  t.equal(workerExits(node!).length, 1, 'no other worker died');
});

t.test('Redis stopped and restarted mid-run: nodes stay up, a revocation made during the outage is enforced', async (t) => {
  const c = await startCluster(t, 'workers');
  const [node] = c.nodes;
  const [a, victim, late] = await c.provision(['out-a', 'out-victim', 'out-late']);
  const ca = await c.connectOn(creds(a!));
  const cv = await c.connectOn(creds(victim!));
  t.teardown(() => { ca.client?.end(true); cv.client?.end(true); });
  t.equal(await readyz(node!), 200, 'ready before the outage');
  const victimGone = closed(cv.client!);

  await c.redis.stop();
  await until('/readyz to report the outage', async () => (await readyz(node!)) === 503, 30_000);
  t.pass('/readyz 503 while Redis is down');
  const r = await runCli(['revoke', victim!.deviceId, '--db', c.db, '--reason', 'during the outage']);
  t.equal(r.code, 0, `revoked during the outage ${r.stderr}`);
  await Promise.race([victimGone, sleep(20_000).then(() => { throw new Error('the revoked device\'s session was not closed during the outage'); })]);
  t.pass('the revoked device\'s session was closed during the outage (the registry\'s change feed needs no Redis)');
  t.equal((await connect(c.url(), creds(victim!))).code, 5, 'and its reconnect is refused during the outage');
  const fresh = await connect(c.url(), creds(late!));
  t.equal(fresh.code, 0, 'a clean-session device still gets in during the outage');
  fresh.client?.end(true);
  t.ok(ca.client!.connected, 'an unrelated device stayed connected');

  await c.redis.restart();
  await until('/readyz ready again', async () => (await readyz(node!)) === 200, 60_000);
  t.pass('ready again once Redis is back, by itself');
  t.equal((await connect(c.url(), creds(victim!))).code, 5, 'the revocation made during the outage still holds');
  // Delivery between the workers works again.
  const [obs] = await c.provision(['out-observer'], 'observer');
  const o = await c.connectOn(creds(obs!));
  await o.client!.subscribeAsync('devices/+/telemetry', { qos: 1 });
  const got = collect(o.client!);
  const s = await c.connectAway(o.place, creds(late!));
  await until('delivery across workers after the outage', async () => {
    await s.client!.publishAsync(`devices/${late!.deviceId}/telemetry`, 'back', { qos: 1 });
    return got.length > 0;
  }, 30_000);
  t.pass(`observer on ${o.place} gets the sensor on ${s.place} again`);
  o.client!.end(true);
  s.client!.end(true);
  t.same(workerExits(node!), [], 'no worker died');
  t.equal((await node!.issuer.reg.devices.get(victim!.deviceId as DeviceId))?.status, 'revoked', 'the registry holds the revocation');
});

t.test('Redis absent at start: the node waits for it, then serves', async (t) => {
  const port = await freePort();
  const starting = startServe(['--workers', '2', '--bus', `redis://127.0.0.1:${port}`, '--log-format', 'json']);
  let started: ServeProcess | null = null;
  let failed: Error | null = null;
  void starting.then((s) => { started = s; }, (err: Error) => { failed = err; });
  t.teardown(async () => { await (await starting.catch(() => null))?.stop(); });
  await sleep(5000);
  t.equal(failed, null, 'the node did not exit while Redis was missing');
  t.equal(started, null, 'and it does not listen before Redis is there');
  await startRedis(t, port);
  const serve = await starting;
  t.match(serve.stderr(), /broker ready/, 'ready once Redis is up');
  const [dev] = await serve.provision(['absent-1']);
  const r = await connect(`mqtt://127.0.0.1:${serve.mqttPort}`, creds(dev!));
  t.equal(r.code, 0, 'a device connects');
  r.client?.end(true);
  t.equal(await readyz(serve), 200, '/readyz ready');
});
