import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { startBroker, validateConfig } from '../broker/index.js';
import { kernelBacklogCap } from '../broker/listeners.js';
import { CredbrokerError } from '../errors/index.js';
import { brokerLogLines, connect, connectDevice, startTestBroker } from './helpers/broker.js';
import { makeDevCerts, makeDevCertsScript } from './helpers/dev-certs.js';
import { registryTargetIn } from './helpers/backend.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

t.test('certs/make-dev-certs.sh', { skip: !hasOpenssl && 'openssl not installed' }, async (t) => {
  const certs = makeDevCerts('broker.example', '192.0.2.7');
  t.teardown(() => certs.remove());
  t.equal(statSync(certs.caKey).mode & 0o777, 0o600, 'ca.key is 0600');
  t.equal(statSync(certs.serverKey).mode & 0o777, 0o600, 'server.key is 0600');
  const text = spawnSync('openssl', ['x509', '-in', certs.serverCert, '-noout', '-text'], { encoding: 'utf8' }).stdout;
  t.match(text, /DNS:localhost/);
  t.match(text, /IP Address:127\.0\.0\.1/);
  t.match(text, /DNS:broker\.example/);
  t.match(text, /IP Address:192\.0\.2\.7/);
  t.match(text, /prime256v1|P-256/, 'EC P-256 key');
  t.match(text, /TLS Web Server Authentication/);
  t.equal(spawnSync('openssl', ['verify', '-CAfile', certs.caCert, certs.serverCert]).status, 0, 'server.crt verifies against ca.crt');
  const before = readFileSync(certs.serverKey, 'utf8');
  const again = spawnSync('bash', [makeDevCertsScript, certs.dir], { encoding: 'utf8' });
  t.not(again.status, 0, 'refuses to overwrite');
  t.match(again.stderr, /already exists.*--force/);
  t.equal(readFileSync(certs.serverKey, 'utf8'), before, 'existing key untouched');
  t.equal(spawnSync('bash', [makeDevCertsScript, '--force', certs.dir], { encoding: 'utf8' }).status, 0, '--force replaces');
  t.not(readFileSync(certs.serverKey, 'utf8'), before, 'new key after --force');
  t.equal(spawnSync('bash', [makeDevCertsScript], { encoding: 'utf8' }).status, 2, 'usage error without OUTDIR');
});

t.test('MQTT over WebSocket with MQTT.js', async (t) => {
  const tb = await startTestBroker({ wsPort: 0 });
  t.teardown(() => tb.close());
  const [s, o] = [...(await tb.provision(['ws-sensor'])), ...(await tb.provision(['ws-observer'], 'observer'))];
  t.ok(tb.broker.ports.ws, 'ws port bound');
  const wsUrl = `ws://127.0.0.1:${tb.broker.ports.ws}`;

  const obs = await connectDevice(tb.url, o!);
  t.equal(obs.code, 0, 'observer over TCP');
  await obs.client!.subscribeAsync('devices/+/telemetry', { qos: 1 });
  const got = new Promise<string>((r) => obs.client!.once('message', (topic, payload) => r(`${topic} ${payload}`)));

  const dev = await connectDevice(wsUrl, s!);
  t.equal(dev.code, 0, 'token connects over WebSocket');
  await dev.client!.publishAsync('devices/ws-sensor/telemetry', 'over-ws', { qos: 1 });
  t.equal(await got, 'devices/ws-sensor/telemetry over-ws', 'publish over WebSocket reaches a TCP subscriber');

  t.equal((await connect(wsUrl, { clientId: 'ws-sensor', username: 'ws-sensor', password: 'garbage' })).code, 4, 'bad token over WebSocket: CONNACK 4');
  const res = await fetch(`http://127.0.0.1:${tb.broker.ports.ws}/`);
  t.equal(res.status, 426, 'plain HTTP on the WebSocket port: 426');
  dev.client!.end(true);
  obs.client!.end(true);
});

t.test('MQTT over TLS with MQTT.js and the development CA', { skip: !hasOpenssl && 'openssl not installed' }, async (t) => {
  const certs = makeDevCerts();
  t.teardown(() => certs.remove());
  const tb = await startTestBroker({ tlsPort: 0, tlsCert: certs.serverCert, tlsKey: certs.serverKey });
  t.teardown(() => tb.close());
  const [s] = await tb.provision(['tls-sensor']);
  const ca = readFileSync(certs.caCert);
  const port = tb.broker.ports.tls!;
  t.ok(port, 'tls port bound');

  for (const host of ['127.0.0.1', 'localhost']) {
    const r = await connectDevice(`mqtts://${host}:${port}`, s!, { ca });
    t.equal(r.code, 0, `connects to ${host} trusting ca.crt`);
    if (r.client) {
      await r.client.publishAsync('devices/tls-sensor/telemetry', 'over-tls', { qos: 1 });
      t.pass('publishes over TLS');
      r.client.end(true);
    }
  }
  const untrusted = await connectDevice(`mqtts://127.0.0.1:${port}`, s!);
  t.equal(untrusted.client, null, 'without the CA the client refuses the certificate');
  const bad = await connect(`mqtts://127.0.0.1:${port}`, { ca, clientId: 'tls-sensor', username: 'tls-sensor', password: 'garbage' });
  t.equal(bad.code, 4, 'bad token over TLS: CONNACK 4');
});

t.test('HTTP operations endpoints', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const base = `http://127.0.0.1:${tb.broker.ports.http}`;
  const [s] = await tb.provision(['ops-sensor']);
  // Some traffic so that the counters have samples: a good connect, a bad one, a refused subscribe.
  const ok = await connectDevice(tb.url, s!);
  t.equal(ok.code, 0);
  await connect(tb.url, { clientId: 'ops-sensor', username: 'ops-sensor', password: 'garbage' });

  const health = await fetch(`${base}/healthz`);
  t.equal(health.status, 200, '/healthz 200');
  t.same(await health.json(), { status: 'ok' });
  const ready = await fetch(`${base}/readyz`);
  t.equal(ready.status, 200, '/readyz 200');
  t.match(await ready.json(), { status: 'ready' });

  const metrics = await fetch(`${base}/metrics`);
  t.equal(metrics.status, 200, '/metrics 200');
  t.match(metrics.headers.get('content-type') ?? '', /text\/plain/);
  const text = await metrics.text();
  for (const name of [
    'credbroker_connected_clients', 'credbroker_auth_results_total', 'credbroker_acl_denials_total',
    'credbroker_renewals_total', 'credbroker_session_kicks_total', 'credbroker_token_verify_seconds',
  ]) t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `/metrics has ${name}`);
  t.match(text, /^credbroker_connected_clients 1$/m, 'one connected client');
  t.match(text, /^credbroker_token_verify_seconds_count [1-9]/m, 'verify time observed');
  t.notMatch(text, s!.accessToken, 'no token in metrics');

  const jwksRes = await fetch(`${base}/.well-known/jwks.json`);
  t.equal(jwksRes.status, 200, 'jwks 200');
  const jwks = (await jwksRes.json()) as JSONWebKeySet;
  t.ok(jwks.keys.length >= 1, 'at least one key');
  for (const k of jwks.keys) t.notOk('d' in k, 'no private key material in the JWKS');
  const { payload, protectedHeader } = await jwtVerify(s!.accessToken, createLocalJWKSet(jwks), {
    issuer: tb.issuer.settings.issuer, audience: tb.issuer.settings.audience,
  });
  t.equal(payload.sub, 'ops-sensor', 'a device token verifies with the served JWKS');
  t.ok(protectedHeader.kid, 'token names its key');

  t.equal((await fetch(`${base}/nope`)).status, 404, 'unknown path 404');
  t.equal((await fetch(`${base}/healthz`, { method: 'POST' })).status, 405, 'POST 405');
  ok.client!.end(true);
});

t.test('config validation errors are clear one-line errors', async (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['unknown key', { mqttPrt: 1883 }, /unknown config setting "mqttPrt"/],
    ['port out of range', { mqttPort: 70000 }, /invalid mqttPort 70000: expected a port number/],
    ['port not a number', { httpPort: 'http' }, /invalid httpPort "http"/],
    ['negative port', { wsPort: -1 }, /invalid wsPort -1/],
    ['fractional port', { tlsPort: 1.5 }, /invalid tlsPort 1.5/],
    ['empty port', { mqttPort: '' }, /invalid mqttPort ""/],
    ['tls cert without key', { tlsCert: '/etc/server.crt' }, /TLS needs both --tls-cert and --tls-key/],
    ['tls key without cert', { tlsKey: '/etc/server.key' }, /TLS needs both --tls-cert and --tls-key/],
    ['tls port without cert', { tlsPort: 8883 }, /--tls-port needs --tls-cert and --tls-key/],
    ['bad denied-publish policy', { deniedPublish: 'ignore' }, /invalid deniedPublish "ignore"/],
    ['bad number', { leewaySec: 'soon' }, /invalid leewaySec "soon"/],
  ];
  for (const [name, raw, re] of cases) {
    try {
      validateConfig(raw);
      t.fail(`${name}: accepted`);
    } catch (err) {
      t.ok(err instanceof CredbrokerError && err.code === 'ERR_CONFIG', `${name}: ERR_CONFIG`);
      t.match((err as Error).message, re, name);
      t.notMatch((err as Error).message, /\n/, `${name}: one line`);
    }
  }
  t.equal(validateConfig({ mqttPort: 'off' }).mqttPort, null, '"off" disables a listener');
  t.equal(validateConfig({ mqttPort: '1884' }).mqttPort, 1884, 'numeric string port (environment)');
  t.equal(validateConfig({ tlsCert: 'a.crt', tlsKey: 'a.key' }).tlsPort, 8883, 'a certificate alone enables TLS on 8883');
  t.equal(validateConfig({ connectTimeoutMs: '15s' }).connectTimeoutMs, 15_000, 'durations accept 15s');
});

t.test('startup failures are clear errors, not crashes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const base = { db: await registryTargetIn(dir), host: '127.0.0.1', mqttPort: null, httpPort: null, wsPort: null, logLevel: 'silent' };
  await t.rejects(startBroker(validateConfig({ ...base, tlsPort: 0, tlsCert: '/nonexistent/server.crt', tlsKey: '/nonexistent/server.key' })), { code: 'ERR_CONFIG', message: /cannot read TLS certificate or key: ENOENT/ }, 'missing certificate file');

  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const busy = (blocker.address() as AddressInfo).port;
  for (const key of ['mqttPort', 'wsPort', 'httpPort'] as const) {
    await t.rejects(startBroker(validateConfig({ ...base, [key]: busy })), { code: 'ERR_CONFIG', message: /already in use/ }, `${key} in use`);
  }
});

t.test('a listen backlog above the kernel cap is reported at start-up', { skip: kernelBacklogCap() === null && 'no /proc/sys/net/core/somaxconn' }, async (t) => {
  const before = brokerLogLines.length;
  const tb = await startTestBroker({ backlog: kernelBacklogCap()! + 1 });
  t.teardown(() => tb.close());
  const warning = brokerLogLines.slice(before).map((l) => JSON.parse(l) as { event?: string; somaxconn?: number }).find((l) => l.event === 'listener.backlog_capped');
  t.equal(warning?.somaxconn, kernelBacklogCap(), 'warned, naming the cap');
});
