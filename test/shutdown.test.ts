// SIGTERM: stop accepting, close sessions, close the registry cleanly (SPEC "Operations").
// The broker runs in a child process (test/helpers/broker-process.mjs, from dist/).
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openIssuer, provisionDevices } from '../provisioning/index.js';
import { closed, connect, connectDevice } from './helpers/broker.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SCRIPT = join(ROOT, 'test/helpers/broker-process.mjs');
const built = existsSync(join(ROOT, 'dist/broker/index.js'));

interface Ports { mqtt: number; tls: number | null; ws: number; http: number }
interface Child {
  readonly child: ChildProcess;
  readonly ports: Ports;
  readonly output: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function spawnBroker(db: string): Promise<Child> {
  const child = spawn(process.execPath, [SCRIPT, db], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let line = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal, at: Date.now() })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`broker child did not start: ${out}`)); }, 20_000);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      line += d;
      const nl = line.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      resolve({ child, ports: JSON.parse(line.slice(0, nl)) as Ports, output: () => out, exited });
    });
    void exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`broker child exited (${code ?? signal}) before starting: ${out}`)); });
  });
}

const portRefuses = (port: number) => new Promise<boolean>((resolve) => {
  const s = netConnect({ port, host: '127.0.0.1' });
  s.once('connect', () => { s.destroy(); resolve(false); });
  s.once('error', () => resolve(true));
});

t.test('SIGTERM closes sessions, exits 0 and leaves an intact registry', { skip: !built && 'dist/ not built (npm run build)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-shutdown-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'registry.db');
  const b = await spawnBroker(db);
  t.teardown(() => { if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGKILL'); });
  const url = `mqtt://127.0.0.1:${b.ports.mqtt}`;

  // Provision through a second registry connection, as the CLI would; close it before
  // the shutdown so that the broker holds the last connection to the file.
  const issuer = await openIssuer(db);
  const { provisioned } = await provisionDevices(issuer, [{ line: 2, id: 'sd-sensor' }, { line: 3, id: 'sd-ws' }], { profile: 'sensor', brokerUrl: url });
  const { provisioned: [obsCreds] } = await provisionDevices(issuer, [{ line: 2, id: 'sd-observer' }], { profile: 'observer', brokerUrl: url });
  issuer.reg.close();
  const [sensorCreds, wsCreds] = provisioned;

  const sensor = await connectDevice(url, sensorCreds!);
  t.equal(sensor.code, 0, 'device connected over TCP');
  const ws = await connectDevice(`ws://127.0.0.1:${b.ports.ws}`, wsCreds!);
  t.equal(ws.code, 0, 'device connected over WebSocket');
  const obs = await connectDevice(url, obsCreds!);
  t.equal(obs.code, 0, 'observer connected');
  await obs.client!.subscribeAsync('devices/+/telemetry', { qos: 1 });
  const got = new Promise<string>((r) => obs.client!.once('message', (_t, p) => r(String(p))));
  await sensor.client!.publishAsync('devices/sd-sensor/telemetry', 'before-shutdown', { qos: 1 });
  t.equal(await got, 'before-shutdown', 'traffic flows before the signal');
  // An audit row still in the broker's write buffer when the signal arrives must be flushed.
  t.equal((await connect(url, { clientId: 'sd-sensor', username: 'sd-sensor', password: 'not-a-token' })).code, 4);

  const clientsClosed = Promise.all([sensor, ws, obs].map((c) => closed(c.client!)));
  const sentAt = Date.now();
  t.ok(b.child.kill('SIGTERM'), 'SIGTERM sent');

  const closedAt = await Promise.race([clientsClosed.then((ts) => Math.max(...ts)), new Promise<number>((r) => setTimeout(() => r(-1), 5000))]);
  t.not(closedAt, -1, 'every client saw its connection close');
  t.ok(closedAt - sentAt < 5000, `clients closed ${closedAt - sentAt} ms after SIGTERM`);
  for (const c of [sensor, ws, obs]) c.client!.end(true);

  const exit = await Promise.race([b.exited, new Promise<null>((r) => setTimeout(() => r(null), 8000))]);
  t.ok(exit, 'the process exited within a few seconds');
  t.equal(exit?.code, 0, 'exit code 0');
  t.equal(exit?.signal, null, 'not killed by the signal');
  t.ok(exit && exit.at - sentAt < 5000, `exited ${exit ? exit.at - sentAt : '?'} ms after SIGTERM`);
  t.match(b.output(), /broker\.stopped/, 'logged broker.stopped');
  for (const [name, port] of Object.entries(b.ports)) if (port) t.ok(await portRefuses(port), `${name} port no longer accepts connections`);

  // The registry: intact, and closed cleanly (the last connection checkpoints and removes the WAL).
  const walSize = existsSync(`${db}-wal`) ? statSync(`${db}-wal`).size : 0;
  t.equal(walSize, 0, 'no un-checkpointed WAL left behind');
  const check = new Database(db, { readonly: true, fileMustExist: true });
  t.teardown(() => check.close());
  t.equal(check.pragma('integrity_check', { simple: true }), 'ok', 'PRAGMA integrity_check: ok');
  t.equal((check.pragma('foreign_key_check') as unknown[]).length, 0, 'PRAGMA foreign_key_check: no violations');
  const devices = (check.prepare('SELECT count(*) AS n FROM devices').get() as { n: number }).n;
  t.equal(devices, 3, 'all provisioned devices are there');
  const refused = check.prepare("SELECT count(*) AS n FROM audit WHERE action = 'auth.refused' AND device_id = 'sd-sensor'").get() as { n: number };
  t.equal(refused.n, 1, 'the buffered audit row was flushed at shutdown');

  // And the file opens again for a new broker.
  const again = await spawnBroker(db);
  t.teardown(() => { if (again.child.exitCode === null && again.child.signalCode === null) again.child.kill('SIGKILL'); });
  const back = await connectDevice(`mqtt://127.0.0.1:${again.ports.mqtt}`, sensorCreds!);
  t.equal(back.code, 0, 'a restarted broker on the same file lets the device back in');
  back.client?.end(true);
  again.child.kill('SIGTERM');
  t.equal((await again.exited).code, 0, 'second broker exits 0 too');
});

t.test('SIGTERM with no client connected exits promptly', { skip: !built && 'dist/ not built (npm run build)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-shutdown-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const b = await spawnBroker(join(dir, 'registry.db'));
  t.teardown(() => { if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGKILL'); });
  const sentAt = Date.now();
  b.child.kill('SIGTERM');
  const exit = await b.exited;
  t.equal(exit.code, 0, 'exit code 0');
  t.ok(exit.at - sentAt < 3000, `exited ${exit.at - sentAt} ms after SIGTERM`);
});
