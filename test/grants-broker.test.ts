import t from 'tap';
import { issueGrant, revokeGrant } from '../operations/index.js';
import type { TestBroker } from './helpers/broker.js';
import { brokerLogLines, closed, connect, connectDevice, startTestBroker, subscribeGranted } from './helpers/broker.js';
import { runCli } from './helpers/cli.js';
import { until } from './helpers/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects as `grant:NAME` with a grant token. */
const connectGrant = (tb: TestBroker, name: string, token: string) => connect(tb.url, { clientId: `grant:${name}`, username: `grant:${name}`, password: token });

/** Waits until the broker's audit buffer has written a row with `action` for the grant (it flushes every 250 ms). */
async function auditRows(tb: TestBroker, name: string, action: string) {
  for (let i = 0; i < 100; i++) {
    const rows = (await tb.issuer.reg.audit.query({ deviceId: `grant:${name}`, limit: null })).filter((e) => e.action === action);
    if (rows.length) return rows;
    await sleep(100);
  }
  return [];
}

t.test('grants through a real broker and real MQTT.js clients', async (t) => {
  // A short leeway: the expiry test waits for it.
  const tb = await startTestBroker({ leewaySec: 1 });
  t.teardown(() => tb.close());
  const [pump] = await tb.provision(['pump-1']);
  await tb.provision(['fleet-obs'], 'observer');

  t.test('a --within grant reads only what it was given; beyond it SUBACK 0x80, a denied publish disconnects', async (t) => {
    const { token, grant } = await issueGrant(tb.issuer, {
      name: 'tech-anna', within: 'fleet-obs', subscribe: ['devices/{device}/x', 'devices/pump-1/telemetry'], publish: ['devices/pump-1/commands/reboot'],
      ttlMs: 600_000, reason: 'on-site inspection INC-4711',
    });
    t.same(grant.subscribe, ['devices/fleet-obs/x', 'devices/pump-1/telemetry'], '{device} is the --within device');
    const g = await connectGrant(tb, 'tech-anna', token);
    t.equal(g.code, 0, 'grant connects as grant:NAME');
    t.equal(await subscribeGranted(g.client!, 'devices/pump-1/telemetry'), 1, 'granted topic');
    for (const f of ['devices/pump-2/telemetry', 'devices/+/telemetry', 'devices/#', '#', '$SYS/#', '$devices/grant:tech-anna/token/+', '$devices/pump-1/token/+']) {
      t.equal(await subscribeGranted(g.client!, f), 128, `SUBACK 0x80 for ${f}`);
    }
    const got: string[] = [];
    g.client!.on('message', (topic, payload) => got.push(`${topic} ${payload}`));
    const p = await connectDevice(tb.url, pump!);
    await p.client!.publishAsync('devices/pump-1/telemetry', '21.5', { qos: 1 });
    await p.client!.publishAsync('devices/pump-1/events/alarm', 'x', { qos: 1 });
    // A command the grant may send reaches the device.
    await subscribeGranted(p.client!, 'devices/pump-1/commands/#');
    const cmd = new Promise<string>((r) => p.client!.once('message', (topic) => r(topic)));
    await g.client!.publishAsync('devices/pump-1/commands/reboot', 'now', { qos: 1 });
    t.equal(await cmd, 'devices/pump-1/commands/reboot', 'the granted command reaches the device');
    // The sentinel: once this reaches the grant, whatever the pump sent before it would have too.
    await p.client!.publishAsync('devices/pump-1/telemetry', 'last', { qos: 1 });
    await until('the pump\'s last telemetry (the sentinel)', () => got.includes('devices/pump-1/telemetry last'), 10_000);
    t.same(got, ['devices/pump-1/telemetry 21.5', 'devices/pump-1/telemetry last'], 'received exactly what it was given');

    const gone = closed(g.client!);
    g.client!.publish('devices/pump-1/commands/selfdestruct', 'x');
    await gone;
    t.pass('a publish outside the grant closes the connection');
    p.client!.end(true);

    const connects = await auditRows(tb, 'tech-anna', 'grant.connect');
    t.equal(connects[0]?.details?.grant, 'tech-anna');
    t.equal(connects[0]?.details?.reason, 'on-site inspection INC-4711', 'the CONNECT row carries the reason');
    const denied = await auditRows(tb, 'tech-anna', 'grant.publish_denied');
    t.match(denied[0]?.details, { grant: 'tech-anna', reason: 'on-site inspection INC-4711', topic: 'devices/pump-1/commands/selfdestruct' }, 'publish denial audited');
    const subDenied = await auditRows(tb, 'tech-anna', 'grant.subscribe_denied');
    t.ok(subDenied.length > 0, 'subscribe denials audited');
    const kicks = await auditRows(tb, 'tech-anna', 'grant.kick');
    t.match(kicks[0]?.details, { grant: 'tech-anna', reason: 'on-site inspection INC-4711', why: 'acl_violation' }, 'kick audited');
  });

  t.test('a grant cannot renew: no answer, and the renewal publish disconnects', async (t) => {
    const { token } = await issueGrant(tb.issuer, { name: 'no-renew', publish: [], subscribe: ['devices/pump-1/telemetry'], ttlMs: 600_000 });
    const g = await connectGrant(tb, 'no-renew', token);
    t.equal(g.code, 0);
    t.equal(await subscribeGranted(g.client!, '$devices/grant:no-renew/token/+'), 128, 'renewal answers not subscribable');
    const answers: string[] = [];
    g.client!.on('message', (topic) => answers.push(topic));
    const gone = closed(g.client!);
    g.client!.publish('$devices/grant:no-renew/token/renew', JSON.stringify({ requestId: 'r1' }));
    await gone;
    t.same(answers, [], 'no token came back');
    t.notOk((await tb.issuer.reg.audit.query({ deviceId: 'grant:no-renew', limit: null })).some((e) => e.action.startsWith('token.renew')), 'no renewal happened');
    const refresh = await connect(tb.url, { clientId: 'grant:no-renew', username: 'grant:no-renew', password: pump!.refreshCredential });
    t.equal(refresh.code, 4, 'a refresh credential is no password for a grant');
  });

  t.test('kicked at expiry', async (t) => {
    const { token, grant } = await issueGrant(tb.issuer, { name: 'short', publish: [], subscribe: ['devices/pump-1/telemetry'], ttlMs: 2000 });
    const g = await connectGrant(tb, 'short', token);
    t.equal(g.code, 0);
    const at = await closed(g.client!);
    const late = at - (grant.expiresAt + 1000);
    t.ok(late > -1000 && late < 1500, `closed at expiry + leeway (off by ${late} ms)`);
    const kicks = await auditRows(tb, 'short', 'grant.kick');
    t.equal(kicks[0]?.details?.why, 'expired');
    t.equal((await connectGrant(tb, 'short', token)).code, 4, 'the expired token is refused');
  });

  t.test('kicked within a second of revoke --grant in another process; the token stays dead', async (t) => {
    const { token } = await issueGrant(tb.issuer, { name: 'partner', publish: [], subscribe: ['devices/+/telemetry'], ttlMs: 3_600_000, reason: 'partner dashboard' });
    const g = await connectGrant(tb, 'partner', token);
    t.equal(g.code, 0);
    const gone = closed(g.client!);
    const r = await runCli(['revoke', '--grant', 'partner', '--reason', 'contract ended', '--db', tb.db]);
    const t0 = Date.now();
    t.equal(r.code, 0, r.stderr);
    const at = await gone;
    t.ok(at - t0 < 1000, `kicked within a second of the command's return (${at - t0} ms)`);
    t.equal((await connectGrant(tb, 'partner', token)).code, 5, 'revoked grant refused with CONNACK 5');
    const kicks = await auditRows(tb, 'partner', 'grant.kick');
    t.match(kicks[0]?.details, { grant: 'partner', reason: 'partner dashboard', why: 'grant_revoked' });
  });

  t.test('a revoked grant stays refused across a broker restart', async (t) => {
    const tb2 = await startTestBroker();
    t.teardown(() => tb2.close());
    const { token } = await issueGrant(tb2.issuer, { name: 'gone', publish: [], subscribe: ['a/b'], ttlMs: 600_000 });
    await revokeGrant(tb2.issuer.reg, 'gone');
    await tb2.broker.close();
    const { startBroker, validateConfig } = await import('../broker/index.js');
    const again = await startBroker(validateConfig({ db: tb2.db, host: '127.0.0.1', mqttPort: 0, wsPort: null, httpPort: null, logLevel: 'silent' }));
    const c = await connect(`mqtt://127.0.0.1:${again.ports.mqtt}`, { clientId: 'grant:gone', username: 'grant:gone', password: token });
    t.equal(c.code, 5);
    await again.close();
  });

  t.test('a grant token is only good as grant:NAME', async (t) => {
    const { token } = await issueGrant(tb.issuer, { name: 'ident', publish: [], subscribe: ['a/b'], ttlMs: 600_000 });
    t.equal((await connect(tb.url, { clientId: 'pump-1', username: 'pump-1', password: token })).code, 4, 'not as a device');
    t.equal((await connect(tb.url, { clientId: 'grant:other', username: 'grant:other', password: token })).code, 4, 'not as another grant');
    t.equal((await connect(tb.url, { clientId: 'grant:ident', username: 'grant:ident', password: pump!.accessToken })).code, 4, 'a device token is not a grant');
    t.equal((await connect(tb.url, { clientId: 'x', username: 'grant:ident', password: token })).code, 5, 'client id must be grant:NAME');
  });

  t.test('/sessions shows a grant session as kind grant', async (t) => {
    const { token } = await issueGrant(tb.issuer, { name: 'visible', publish: [], subscribe: ['a/b'], ttlMs: 600_000 });
    const g = await connectGrant(tb, 'visible', token);
    t.equal(g.code, 0);
    const res = await fetch(`http://127.0.0.1:${tb.broker.ports.http}/sessions?device=grant:visible`);
    const body = (await res.json()) as { sessions: { deviceId: string; kind: string }[] };
    t.match(body.sessions, [{ deviceId: 'grant:visible', kind: 'grant' }]);
    const metrics = await (await fetch(`http://127.0.0.1:${tb.broker.ports.http}/metrics`)).text();
    t.match(metrics, /credbroker_auth_results_total\{result="ok",reason="grant"\} \d+/);
    g.client!.end(true);
  });

  t.test('no grant token in any audit row or log line', async (t) => {
    t.ok((await tb.issuer.reg.grants.list()).length > 0, 'grants were minted');
    const rows = JSON.stringify((await tb.issuer.reg.audit.query({ limit: null })));
    t.notMatch(rows, /eyJ[A-Za-z0-9_-]{10,}\.eyJ/, 'no JWT in the audit log');
    t.notMatch(brokerLogLines.join('\n'), /eyJ[A-Za-z0-9_-]{10,}\.eyJ/, 'no JWT in the logs');
  });
});
