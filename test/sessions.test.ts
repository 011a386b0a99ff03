// Who is connected now (issue 11 #3): `GET /sessions` on the ops HTTP port and
// `credbroker sessions` / `credbroker show` reading it, against a real broker
// with 100 connected devices over TCP and WebSocket, and devices over TLS (a
// subtest of its own, which needs openssl for the development CA).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import type { MqttClient } from 'mqtt';
import type { SessionPage } from '../broker/session-list.js';
import { connect, connectDevice, startTestBroker } from './helpers/broker.js';
import { runCli } from './helpers/cli.js';
import { makeDevCerts } from './helpers/dev-certs.js';
import { pool } from './helpers/hostile-util.js';
import { testNeeding } from './helpers/tools.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

t.test('100 connected devices: GET /sessions pages, credbroker sessions, show', async (t) => {
  const tb = await startTestBroker({ wsPort: 0 });
  t.teardown(() => tb.close());
  const ids = Array.from({ length: 100 }, (_, i) => `dev-${String(i).padStart(3, '0')}`);
  const creds = await tb.provision(ids);
  const { ws, http } = tb.broker.ports;

  // dev-000 comes in with its refresh credential; then 29 over WebSocket, the rest over TCP.
  const clients: MqttClient[] = [];
  t.teardown(() => { for (const c of clients) c.end(true); });
  const codes = await pool(creds, 20, async (c, i) => {
    const r = i === 0
      ? await connect(tb.url, { clientId: c.deviceId, username: c.deviceId, password: c.refreshCredential })
      : i < 30 ? await connectDevice(`ws://127.0.0.1:${ws}`, c)
        : await connectDevice(tb.url, c);
    if (r.client) clients.push(r.client);
    return r.code;
  });
  t.same(codes.filter((c) => c !== 0), [], 'all 100 devices connected');

  // Pages of 30 by the cursor: every session once, in device-id order.
  const base = `http://127.0.0.1:${http}`;
  const seen: SessionPage['sessions'] = [];
  let after: string | null = null;
  let pages = 0;
  do {
    const res = await fetch(`${base}/sessions?limit=30${after ? `&after=${after}` : ''}`);
    t.equal(res.status, 200);
    const page = (await res.json()) as SessionPage;
    seen.push(...page.sessions);
    after = page.next;
    pages++;
  } while (after && pages < 10);
  t.equal(pages, 4, '100 sessions in pages of 30: 4 pages, the last with next = null');
  t.same(seen.map((s) => s.deviceId), ids, 'every device once, ordered by id');
  const byId = new Map(seen.map((s) => [s.deviceId, s]));
  t.equal(byId.get('dev-000')!.kind, 'refresh', 'a refresh-credential session says so');
  t.equal(byId.get('dev-050')!.kind, 'device', 'an access-token session is a device session');
  t.equal(byId.get('dev-005')!.transport, 'ws', 'WebSocket');
  t.equal(byId.get('dev-099')!.transport, 'tcp', 'TCP');
  const counts = seen.reduce<Record<string, number>>((a, s) => ({ ...a, [s.transport]: (a[s.transport] ?? 0) + 1 }), {});
  t.same(counts, { tcp: 71, ws: 29 }, `transports ${JSON.stringify(counts)}`);
  const s99 = byId.get('dev-099')!;
  t.equal(s99.address, '127.0.0.1', 'peer address');
  t.match(s99.connectedAt, ISO, 'connectedAt is ISO 8601');
  t.equal(s99.expiresAt, creds[99]!.accessTokenExpiresAt, 'expiresAt is the token\'s expiry');

  // Bounded and validated like the rest of ops HTTP.
  const bad = async (query: string) => {
    const res = await fetch(`${base}/sessions?${query}`);
    return `${res.status} ${((await res.json()) as { error: string }).error}`;
  };
  t.match(await bad('limit=100000'), /^400 limit must be a whole number from 1 to 1000$/, 'no unbounded page');
  t.match(await bad('limit=-1'), /^400 limit/, 'negative limit');
  t.match(await bad('after=a%2Fb'), /^400 after must be a device id$/, 'cursor checked');
  t.match(await bad('devices=x'), /^400 unknown parameter "devices"/, 'unknown parameter named');
  const one = (await (await fetch(`${base}/sessions?device=dev-042`)).json()) as SessionPage;
  t.same(one.sessions.map((s) => s.deviceId), ['dev-042'], '?device= picks one session');
  t.equal((await fetch(`${base}/sessions`, { method: 'POST' })).status, 405, 'read-only');

  // The CLI: --json, text pages with the cursor, one device, show.
  const brokerFlag = ['--broker', base];
  const all = await runCli(['sessions', ...brokerFlag, '--json']);
  t.equal(all.code, 0, 'sessions --json exits 0');
  const allRows = JSON.parse(all.stdout) as SessionPage['sessions'];
  t.same(allRows.map((s) => s.deviceId), ids, 'sessions --json lists the 100 connected devices (default --limit 100)');
  t.equal(all.stderr, '', 'not cut off: nothing on stderr');
  const paged = await runCli(['sessions', ...brokerFlag, '--json', '--limit', '99', '--after', '']);
  t.match(JSON.parse(paged.stdout), { next: 'dev-098' }, '--after "": {sessions, next}, cut off after 99');

  const first = await runCli(['sessions', ...brokerFlag, '--limit', '40']);
  t.equal(first.code, 0);
  const firstLines = first.stdout.trim().split('\n');
  t.match(firstLines[0], /^DEVICE\s+KIND\s+TRANSPORT\s+ADDRESS\s+CONNECTED\s+EXPIRES$/, 'table header');
  t.equal(firstLines.length, 43, 'header, 40 rows, the count, the cut-off line');
  t.same(firstLines.slice(-2), ['40 sessions', 'more sessions after these 40: add --after dev-039'], 'the cut-off line names the cursor');
  const second = await runCli(['sessions', ...brokerFlag, '--limit', '40', '--after', 'dev-039', '--json']);
  const secondPage = JSON.parse(second.stdout) as SessionPage;
  t.equal(secondPage.sessions[0]!.deviceId, 'dev-040', '--after continues where the first page stopped');
  t.equal(secondPage.next, 'dev-079', 'and states where it was cut off');
  const cut = await runCli(['sessions', ...brokerFlag, '--limit', '30', '--json']);
  t.equal((JSON.parse(cut.stdout) as unknown[]).length, 30, 'without --after: the bare array');
  t.match(cut.stderr, /cut off at 30 sessions; the rest with --after dev-029/, 'and stderr says it was cut off');

  const dev = await runCli(['sessions', ...brokerFlag, '--device', 'dev-007']);
  t.equal(dev.code, 0);
  t.match(dev.stdout, /^dev-007\s+device\s+ws\s+127\.0\.0\.1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+\d{4}-/m, '--device shows its row');
  clients.find((c) => c.options.clientId === 'dev-098')!.end(true);
  await new Promise((r) => setTimeout(r, 300));
  const gone = await runCli(['sessions', ...brokerFlag, '--device', 'dev-098']);
  t.equal(`${gone.code} ${gone.stdout.trim()}`, '0 dev-098 is not connected', 'a device that left');

  const shown = await runCli(['show', 'dev-007', '--db', tb.db, ...brokerFlag]);
  t.equal(shown.code, 0, 'show exits 0');
  t.match(shown.stdout, /^connected:\s+yes, device session over ws from 127\.0\.0\.1 since \S+ \S+, expires /m, 'show says it is connected');
  const shownJson = JSON.parse((await runCli(['show', 'dev-098', '--db', tb.db, ...brokerFlag, '--json'])).stdout) as { session?: unknown };
  t.equal(shownJson.session, null, 'show --json: session null when not connected');

  const port = await closedPort();
  const offline = await runCli(['show', 'dev-007', '--db', tb.db, '--broker', `http://127.0.0.1:${port}`]);
  t.equal(offline.code, 0, 'show with no broker still exits 0');
  t.notMatch(offline.stdout, /connected:/, 'and says nothing about the connection');
  t.equal(offline.stderr, '', 'silently');
  t.notOk('session' in (JSON.parse((await runCli(['show', 'dev-007', '--db', tb.db, '--broker', `http://127.0.0.1:${port}`, '--json'])).stdout) as object), 'no session field when the broker did not answer');
});

testNeeding(t, 'devices over TLS: GET /sessions and credbroker sessions say tls', !hasOpenssl && 'openssl not installed (apt-get install openssl): no development CA for the TLS port', async (t) => {
  const certs = makeDevCerts();
  t.teardown(() => certs.remove());
  const tb = await startTestBroker({ tlsPort: 0, tlsCert: certs.serverCert, tlsKey: certs.serverKey });
  t.teardown(() => tb.close());
  const creds = await tb.provision(['tls-1', 'tls-2']);
  const clients: MqttClient[] = [];
  t.teardown(() => { for (const c of clients) c.end(true); });
  for (const c of creds) {
    const r = await connectDevice(`mqtts://127.0.0.1:${tb.broker.ports.tls}`, c, { ca: readFileSync(certs.caCert) });
    t.equal(r.code, 0, `${c.deviceId} connected over TLS`);
    if (r.client) clients.push(r.client);
  }
  const base = `http://127.0.0.1:${tb.broker.ports.http}`;
  const page = (await (await fetch(`${base}/sessions`)).json()) as SessionPage;
  t.same(page.sessions.map((s) => `${s.deviceId} ${s.transport}`), ['tls-1 tls', 'tls-2 tls'], 'GET /sessions: transport tls');
  const row = await runCli(['sessions', '--broker', base, '--device', 'tls-2']);
  t.match(row.stdout, /^tls-2\s+device\s+tls\s+127\.0\.0\.1\s/m, 'credbroker sessions --device: transport tls');
});

t.test('credbroker sessions: one line and a non-zero exit when it cannot ask', async (t) => {
  const port = await closedPort();
  const r = await runCli(['sessions', '--broker', `http://127.0.0.1:${port}`]);
  t.equal(r.code, 8, 'exit 8: broker unreachable');
  t.equal(r.stderr, `credbroker: cannot reach the broker at http://127.0.0.1:${port}: ECONNREFUSED (is "credbroker serve" running? --broker names its ops HTTP address)\n`, 'one line naming the address and the cause');
  t.equal(r.stdout, '', 'nothing on stdout');

  // Something else on the port (here: a plain HTTP server that is not credbroker).
  const { createServer: createHttp } = await import('node:http');
  const other = createHttp((_q, res) => { res.writeHead(404); res.end('nope'); });
  await new Promise<void>((res) => other.listen(0, '127.0.0.1', res));
  t.teardown(() => other.close());
  const otherPort = (other.address() as AddressInfo).port;
  const wrong = await runCli(['sessions', '--broker', `http://127.0.0.1:${otherPort}`]);
  t.equal(`${wrong.code} ${wrong.stderr}`, `8 credbroker: http://127.0.0.1:${otherPort} did not answer GET /sessions as a credbroker broker does (HTTP 404): is --broker its ops HTTP port?\n`, 'not a credbroker port');

  for (const [args, line] of [
    [['--broker', 'localhost:9100'], /^credbroker: invalid --broker "localhost:9100": expected the broker's ops HTTP address/],
    [['--limit', '0'], /^credbroker: invalid --limit "0": use a whole number from 1 to/],
    [['--after', 'a/b'], /^credbroker: invalid --after "a\/b": the cursor is a device id/],
    [['--device', 'a#b'], /^credbroker: invalid device id "a#b"/],
  ] as const) {
    const u = await runCli(['sessions', ...args]);
    t.equal(u.code, 2, `${args.join(' ')}: exit 2`);
    t.match(u.stderr, line, `${args.join(' ')}: one line`);
    t.equal(u.stderr.split('\n').length, 2, 'exactly one line');
  }
});
