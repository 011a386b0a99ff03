// Reaching the Redis bus safely (issue 19): a Redis ACL user and password in the
// bus URL, Redis over TLS (`rediss://`, the server verified against --bus-ca),
// every Redis connection of a node authenticated; a wrong password said in one
// line with the password hidden; a bus off loopback without TLS and a password
// refused before any connection unless --bus-insecure, which is then logged at
// start and shown in /readyz. Real redis-server processes, started here.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Redis } from 'ioredis';
import { checkBusSecurity, isLoopbackHost } from '../cluster/bus-policy.js';
import { openIssuer } from '../provisioning/index.js';
import { connectDevice } from './helpers/broker.js';
import { lines, runCli, spawnCli } from './helpers/cli.js';
import { until } from './helpers/cluster.js';
import { makeDevCerts } from './helpers/dev-certs.js';
import { freePort, startRedis } from './helpers/redis.js';
import { startServe } from './helpers/serve-process.js';
import { registryTargetIn } from './helpers/backend.js';

const USER = { name: 'credbroker', password: 'Bus P@ss:w0rd%/Secret' };

/** A registry in a temp folder, for a `serve` that is refused or never gets ready. */
async function registry(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-bus-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = await registryTargetIn(dir);
  (await openIssuer(db)).reg.close();
  return db;
}

/** The clients Redis lists, as `field=value` maps (CLIENT LIST), seen by a connection of `url`'s user. */
async function clientList(url: string, ca?: string): Promise<Record<string, string>[]> {
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, ...(ca && { tls: { ca } }) });
  try {
    await admin.connect();
    const list = await admin.client('LIST') as string;
    return list.trim().split('\n').map((l) => Object.fromEntries(l.trim().split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])));
  } finally {
    admin.disconnect();
  }
}

t.test('the decision: loopback goes; elsewhere TLS and a password, or --bus-insecure', async (t) => {
  for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.8.9.10', '[::1]', '[::ffff:127.0.0.1]']) t.ok(isLoopbackHost(new URL(`redis://${host}:6379`).hostname), `${host} is loopback`);
  for (const host of ['10.0.0.1', 'redis.internal', 'localhost.example.com', '127.0.0.1.nip.io', '[::2]', '[::ffff:10.0.0.1]', '0.0.0.0']) t.notOk(isLoopbackHost(new URL(`redis://${host}:6379`).hostname), `${host} is not loopback`);

  t.match(checkBusSecurity('redis://127.0.0.1:6379', false), { secure: false, tls: false, auth: false, loopback: true, insecure: false }, 'loopback without a password: allowed');
  t.match(checkBusSecurity('rediss://u:p@10.0.0.1:6379', false), { secure: true, tls: true, auth: true, loopback: false }, 'TLS and a password: allowed anywhere');
  t.throws(() => checkBusSecurity('redis://10.0.0.1:6379', false), { code: 'ERR_CONFIG', message: /not on loopback and lacks TLS \(rediss:\/\/\) and a password:/ });
  t.throws(() => checkBusSecurity('rediss://10.0.0.1:6379', false), { message: /lacks a password:/ }, 'TLS alone is not enough');
  t.throws(() => checkBusSecurity('redis://:Hunter2Secret@redis.internal:6379', false), { message: /lacks TLS \(rediss:\/\/\):/ }, 'a password alone is not enough');
  try {
    checkBusSecurity('redis://:Hunter2Secret@redis.internal:6379', false);
  } catch (err) {
    t.notMatch((err as Error).message, /Hunter2Secret/, 'the refusal hides the password');
  }
  t.match(checkBusSecurity('redis://10.0.0.1:6379', true), { secure: false, loopback: false, insecure: true }, '--bus-insecure allows it, and says so');
});

t.test('a bus off loopback without TLS and a password is refused in one line, before any connection', async (t) => {
  const db = await registry(t);
  const started = Date.now();
  // 10.0.0.1 is never contacted: a connection attempt would hang far past the refusal.
  const r = await runCli(['serve', '--db', db, '--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0', '--bus', 'redis://:Hunter2Secret@10.0.0.1:6379']);
  t.equal(r.code, 2, 'exit 2');
  t.equal(lines(r.stderr).length, 1, 'one line');
  t.match(r.stderr, /^credbroker: bus redis:\/\/:\*\*\*@10\.0\.0\.1:6379 is not on loopback and lacks TLS \(rediss:\/\/\): .*--bus-insecure to accept that\n$/);
  t.notMatch(r.stderr + r.stdout, /Hunter2Secret/, 'the password is not shown');
  t.ok(Date.now() - started < 30_000, 'refused at once');

  const ca = await runCli(['serve', '--db', db, '--bus', 'rediss://u:p@127.0.0.1:6379', '--bus-ca', join(db, '..', 'missing-ca.pem')]);
  t.equal(ca.code, 2, 'an unreadable --bus-ca: exit 2');
  t.match(ca.stderr, /^credbroker: cannot read --bus-ca .*missing-ca\.pem: ENOENT\n$/);
  const plain = await runCli(['serve', '--db', db, '--bus', 'redis://127.0.0.1:6379', '--bus-ca', join(db, '..', 'missing-ca.pem')]);
  t.equal(plain.code, 2, '--bus-ca with a redis:// bus: exit 2');
  t.match(plain.stderr, /^credbroker: --bus-ca needs a TLS bus: --bus rediss:\/\/HOST:PORT\n$/);
});

t.test('--bus-insecure: a warn line at start, and /readyz shows it', async (t) => {
  const redis = await startRedis(t);
  const serve = await startServe(['--bus', redis.url, '--bus-insecure', '--log-format', 'json']);
  t.teardown(() => serve.stop());
  await serve.waitForLine(/"event":"bus\.insecure"/);
  t.pass('bus.insecure logged');
  const ready = await (await fetch(`http://127.0.0.1:${serve.httpPort}/readyz`)).json();
  t.match(ready, { status: 'ready', bus: { secure: false, tls: false, auth: false, loopback: true, insecure: true } });
});

t.test('a loopback bus without a password: allowed, with one warn line; /readyz says it is not secure', async (t) => {
  const redis = await startRedis(t);
  const serve = await startServe(['--bus', redis.url, '--log-format', 'json']);
  t.teardown(() => serve.stop());
  await serve.waitForLine(/"event":"bus\.unauthenticated"/);
  t.equal(serve.records().filter((r) => r.event === 'bus.unauthenticated').length, 1, 'one line');
  const ready = await (await fetch(`http://127.0.0.1:${serve.httpPort}/readyz`)).json();
  t.match(ready, { status: 'ready', bus: { secure: false, auth: false, insecure: false } });
});

t.test('a Redis ACL user and password: every connection of the node authenticates as that user', async (t) => {
  const redis = await startRedis(t, undefined, { user: USER });
  t.match(redis.url, /^redis:\/\/credbroker:.*@127\.0\.0\.1:\d+$/);
  const serve = await startServe(['--bus', redis.url, '--log-format', 'json']);
  t.teardown(() => serve.stop());
  const [dev] = await serve.provision(['acl-1']);
  const r = await connectDevice(`mqtt://127.0.0.1:${serve.mqttPort}`, dev!);
  t.equal(r.code, 0, 'a device connects through the node');
  r.client!.end(true);
  const ready = await (await fetch(`http://127.0.0.1:${serve.httpPort}/readyz`)).json();
  t.match(ready, { status: 'ready', bus: { auth: true, tls: false, secure: false } });
  // The bus' three connections and the claim-session locks' one, and the test's own.
  await until('the node\'s four Redis connections', async () => (await clientList(redis.url)).filter((c) => c.user === USER.name).length >= 5);
  t.same((await clientList(redis.url)).filter((c) => c.user !== USER.name), [], 'no connection as any other user');
  t.notMatch(serve.lines().join('\n') + serve.stderr(), USER.password, 'the password is never printed');
  t.notOk(serve.records().some((l) => l.event === 'bus.unauthenticated'), 'no warning');
});

t.test('a wrong password: one line saying so, the password hidden', async (t) => {
  const redis = await startRedis(t, undefined, { user: USER });
  const db = await registry(t);
  const wrong = redis.url.replace(encodeURIComponent(USER.password), 'Wrong%20Secret42');
  const child = spawnCli(['serve', '--db', db, '--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0', '--bus', wrong, '--log-format', 'json']);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(async () => { child.kill('SIGKILL'); await exited; });
  await until('the refusal logged', () => out.includes('bus.auth_refused'), 60_000);
  const line = out.split('\n').find((l) => l.includes('bus.auth_refused'))!;
  t.match(line, /WRONGPASS/, 'Redis\' reason');
  t.match(line, /redis:\/\/credbroker:\*\*\*@127\.0\.0\.1/, 'the URL, redacted');
  t.match(line, /user or password/);
  t.notMatch(out, /Wrong.?Secret42/, 'the wrong password is never printed');
});

t.test('rediss:// with --bus-ca: TLS, the server verified, every connection over it', async (t) => {
  const certs = makeDevCerts();
  t.teardown(() => certs.remove());
  const redis = await startRedis(t, await freePort(), { user: USER, tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert } });
  t.match(redis.url, /^rediss:\/\//);
  const serve = await startServe(['--bus', redis.url, '--bus-ca', certs.caCert, '--workers', '2', '--log-format', 'json']);
  t.teardown(() => serve.stop());
  const ready = await (await fetch(`http://127.0.0.1:${serve.httpPort}/readyz`)).json();
  t.match(ready, { status: 'ready', workers: { ready: 2 }, bus: { secure: true, tls: true, auth: true, insecure: false } });
  const [a, b] = await serve.provision(['tls-1', 'tls-2']);
  const url = `mqtt://127.0.0.1:${serve.mqttPort}`;
  const ra = await connectDevice(url, a!);
  const rb = await connectDevice(url, b!);
  t.equal(ra.code, 0);
  t.equal(rb.code, 0);
  ra.client!.end(true);
  rb.client!.end(true);
  // Redis listens on TLS only (no plain port): a node connection without TLS could not be there at all.
  await until('both workers\' eight connections', async () => (await clientList(redis.url, readFileSync(certs.caCert, 'utf8'))).filter((c) => c.user === USER.name).length >= 9);
  t.notMatch(serve.lines().join('\n') + serve.stderr(), USER.password);
});
