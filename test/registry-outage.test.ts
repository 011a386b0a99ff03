// PostgreSQL down under a running node (issue 14, "PostgreSQL down"): connected devices
// stay, CONNECTs with valid tokens are accepted (keys and revocations in memory),
// renewals are answered `unavailable` and the device client retries them, /readyz says
// so, the CLI fails with one line and exit 5, and when the database is back everything
// recovers without a restart, with the revocations made meanwhile enforced at once.
import t from 'tap';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { DeviceClient } from '../device/client.js';
import type { DeviceCredentials } from '../provisioning/index.js';
import { closed, connect } from './helpers/broker.js';
import { runCli } from './helpers/cli.js';
import { sharedPostgres } from './helpers/postgres.js';
import { renewalSession } from './helpers/renewal-session.js';
import { startServe } from './helpers/serve-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readyz(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000): Promise<T> {
  for (const end = Date.now() + ms; ;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

t.test('PostgreSQL stopped under a node: it keeps serving, refuses renewals as unavailable, and recovers by itself', async (t) => {
  const pg = await sharedPostgres();
  const db = await pg.newDatabase();
  const dir = t.testdir();
  const creds = join(dir, 'creds');
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const prov = await runCli(['provision', 'live-1', 'late-1', 'renew-1', 'gone-1', '--profile', 'sensor', '--out', creds, '--db', db]);
  t.equal(prov.code, 0, prov.stderr);
  const quick = await runCli(['provision', 'auto-1', '--profile', 'sensor', '--ttl', '1m', '--out', creds, '--db', db]);
  t.equal(quick.code, 0, quick.stderr);
  const read = (id: string) => JSON.parse(readFileSync(join(creds, `${id}.json`), 'utf8')) as DeviceCredentials;

  const node = await startServe([], {}, { db });
  t.teardown(() => node.stop());
  t.teardown(() => pg.start()); // whatever happens below, the next test finds the cluster up
  const url = `mqtt://127.0.0.1:${node.mqttPort}`;
  t.match(await readyz(node.httpPort), { status: 200, body: { status: 'ready' } });

  const live = await connect(url, { clientId: 'live-1', username: 'live-1', password: read('live-1').accessToken });
  t.equal(live.code, 0);
  const gone = await connect(url, { clientId: 'gone-1', username: 'gone-1', password: read('gone-1').accessToken });
  t.equal(gone.code, 0);
  const renewer = await renewalSession(url, 'renew-1', read('renew-1').accessToken);
  t.equal(renewer.code, 0);
  // A device client that renews on its own, 3 s after it connects.
  const auto = new DeviceClient({ credentials: { ...read('auto-1'), brokerUrl: url }, renewAtFraction: 0.05, jitterFraction: 0 });
  const autoEvents: string[] = [];
  auto.on('renewRejected', (e) => autoEvents.push(e.code));
  auto.on('renewed', () => autoEvents.push('renewed'));
  t.teardown(() => auto.stop());
  await auto.start();

  await pg.stop();

  // Connected devices stay; a CONNECT with a valid token is accepted: no database on that path.
  const late = await connect(url, { clientId: 'late-1', username: 'late-1', password: read('late-1').accessToken });
  t.equal(late.code, 0, 'a CONNECT with a valid token is accepted while the database is down');
  t.ok(live.client!.connected, 'a connected device stays connected');
  await live.client!.publishAsync('devices/live-1/telemetry', 'still here', { qos: 1 });
  t.pass('a QoS 1 publish is acknowledged while the database is down');

  // Renewals: answered on …/rejected with the retryable code.
  const answer = await renewer.request!();
  t.equal(answer.kind, 'rejected');
  t.equal(answer.body.code, 'ERR_UNAVAILABLE', 'a renewal is answered unavailable');
  await waitFor('the device client to meet ERR_UNAVAILABLE', () => autoEvents.includes('ERR_UNAVAILABLE'));

  const ready = await readyz(node.httpPort);
  t.match(ready.body, { status: 'degraded' }, '/readyz says degraded');

  // The CLI: one line, exit 5, no password.
  const cli = await runCli(['revoke', 'gone-1', '--db', db]);
  t.equal(cli.code, 5, 'the CLI exits 5');
  t.equal(cli.stderr.trim().split('\n').length, 1, `one line: ${cli.stderr}`);
  t.match(cli.stderr, /unavailable/);
  t.notMatch(cli.stderr + cli.stdout + node.lines().join('\n') + node.stderr(), pg.password, 'the password is in no output and no log');

  // Back: a revocation committed before the node has reconnected is enforced at once (catch-up by seq).
  await pg.start();
  const kicked = closed(gone.client!);
  const revoke = await runCli(['revoke', 'gone-1', '--db', db]);
  t.equal(revoke.code, 0, revoke.stderr);
  const exitedAt = Date.now();
  const at = await Promise.race([kicked, sleep(15_000).then(() => NaN)]);
  t.ok(Number.isFinite(at), `the device revoked right after the restart is kicked (${at - exitedAt} ms after the revoke process exited)`);
  await waitFor('the device client to renew once the database is back', () => autoEvents.includes('renewed'));
  t.equal((await renewer.request!()).kind, 'accepted', 'renewals work again, no restart');
  await waitFor('/readyz ready again', async () => (await readyz(node.httpPort)).body.status === 'ready');
  t.notMatch(node.lines().join('\n') + node.stderr(), pg.password, 'no password in the node\'s log');
  for (const c of [live.client, late.client, renewer.client]) c?.end(true);
});
