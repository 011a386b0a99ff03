import t from 'tap';
import type { MqttClient } from 'mqtt';
import { revokeDevices, revokeToken } from '../operations/index.js';
import { writeCredentialsFile } from '../provisioning/index.js';
import type { DeviceId, Jti } from '../registry/index.js';
import { DeviceClient, type DeviceError } from '../device/index.js';
import { connect, startTestBroker, type TestBroker } from './helpers/broker.js';
import { jtiOf, renewalSession as session } from './helpers/renewal-session.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const states = async (tb: TestBroker, id: string) => (await tb.issuer.reg.refresh.forDevice(id as DeviceId)).map((r) => r.state);
const end = (c: MqttClient | null) => new Promise<void>((r) => (c ? c.end(false, {}, () => r()) : r()));

function waitFor<T>(c: DeviceClient, ev: 'connected' | 'disconnected' | 'refused', ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${ev}' within ${ms} ms`)), ms);
    c.once(ev, (arg: unknown) => { clearTimeout(timer); resolve(arg as T); });
  });
}

t.test('refresh credential rotation', async (t) => {
  const tb = await startTestBroker({ authFailBurst: 1000, authFailPerSec: 100 });
  t.teardown(() => tb.close());
  const clients: DeviceClient[] = [];
  t.teardown(async () => { for (const c of clients) await c.stop(); });

  t.test('a replayed superseded refresh credential revokes the device and closes its live session', async (t) => {
    const [creds] = await tb.provision(['rp-1']);
    const r0 = creds!.refreshCredential;
    const s1 = await session(tb.url, 'rp-1', r0);
    const a1 = await s1.request!();
    t.equal(a1.kind, 'accepted');
    t.match(a1.body, { accessToken: String, accessTokenExpiresAt: String, refreshCredential: /^cbrt_/, refreshCredentialExpiresAt: String }, 'a refresh session gets a rotated refresh credential');
    await end(s1.client);
    const r1 = a1.body.refreshCredential as string;
    const s2 = await session(tb.url, 'rp-1', r1);
    t.equal(s2.code, 0, 'the new credential works');
    const a2 = await s2.request!();
    await end(s2.client);
    t.same(await states(tb, 'rp-1'), ['current', 'previous', 'superseded'], 'using R1 supersedes R0');

    const live = new DeviceClient({ credentials: { ...creds!, accessToken: a2.body.accessToken as string, accessTokenExpiresAt: a2.body.accessTokenExpiresAt as string, refreshCredential: a2.body.refreshCredential as string } });
    clients.push(live);
    await live.start();
    const dropped = waitFor(live, 'disconnected');
    const refused = waitFor<{ connackCode: number }>(live, 'refused');
    const t0 = Date.now();
    const replay = await connect(tb.url, { clientId: 'rp-1', username: 'rp-1', password: r0 });
    t.equal(replay.code, 5, 'the replay is refused (CONNACK 5)');
    await dropped;
    t.ok(Date.now() - t0 < 1000, `live session closed within a second (${Date.now() - t0} ms)`);
    t.same(await refused, { connackCode: 5 }, 'the device itself is now refused too');
    const audit = await tb.issuer.reg.audit.query({ deviceId: 'rp-1' });
    t.ok(audit.some((e) => e.action === 'security.refresh_replay'), 'security.refresh_replay audited');
    t.equal((await tb.issuer.reg.devices.require('rp-1' as DeviceId)).status, 'revoked', 'device revoked in the registry');
    t.equal((await connect(tb.url, { clientId: 'rp-1', username: 'rp-1', password: a2.body.refreshCredential as string })).code, 5, 'even the newest refresh credential is dead');
    t.notOk(JSON.stringify(audit).includes('cbrt_'), 'audit holds no credential');
    await live.stop();
  });

  t.test('connection cut right after accepted: the previous refresh credential still gets back in', async (t) => {
    const [creds] = await tb.provision(['cut-1'], 'sensor', { ttlMs: 1000 });
    const path = writeCredentialsFile(tb.dir, creds!);
    const s1 = await session(tb.url, 'cut-1', creds!.refreshCredential);
    const a1 = await s1.request!();
    t.equal(a1.kind, 'accepted');
    s1.client!.end(true); // cut: the device never saw (or never saved) the answer
    t.same(await states(tb, 'cut-1'), ['current', 'previous'], 'R1 issued, R0 kept as previous');
    await sleep(Math.max(0, Date.parse(creds!.accessTokenExpiresAt) - Date.now()) + 50);
    const dev = new DeviceClient({ credentialsPath: path, backoff: { initialMs: 50, maxMs: 1000 } });
    clients.push(dev);
    const conn = waitFor<{ via: string }>(dev, 'connected');
    await dev.start();
    t.same(await conn, { via: 'refresh' }, 'the device, still holding R0 and an expired token, is back');
    t.equal((await tb.issuer.reg.devices.require('cut-1' as DeviceId)).status, 'active', 'not revoked');
    const now = dev.credentials().refreshCredential;
    t.not(now, creds!.refreshCredential);
    t.not(now, a1.body.refreshCredential, 'it got a new credential, not the lost one');
    t.same(await states(tb, 'cut-1'), ['current', 'superseded', 'previous'], 'newest first: R2 current; the lost, never-used R1 superseded; R0 previous until R2 is used');
    await dev.stop();
  });

  t.test('two renewals on one refresh session hand out the same new credential (losing either answer is harmless)', async (t) => {
    const [lostBoth, gotFirst] = await tb.provision(['dbl-1', 'dbl-2']);
    for (const [creds, keep] of [[lostBoth!, 'r0'], [gotFirst!, 'r1']] as const) {
      const s = await session(tb.url, creds.deviceId, creds.refreshCredential);
      const [a, b] = await Promise.all([s.request!(), s.request!()]);
      t.equal(a.kind, 'accepted');
      t.equal(b.kind, 'accepted');
      t.equal(a.body.refreshCredential, b.body.refreshCredential, `${creds.deviceId}: same successor both times`);
      t.not(a.body.accessToken, b.body.accessToken, 'each answer has its own access token');
      s.client!.end(true);
      const again = await session(tb.url, creds.deviceId, keep === 'r0' ? creds.refreshCredential : (a.body.refreshCredential as string));
      t.equal(again.code, 0, `${creds.deviceId}: the device holding ${keep === 'r0' ? 'the old credential (lost both answers)' : 'the first answer\'s credential'} gets back in`);
      t.equal((await again.request!()).kind, 'accepted');
      await end(again.client);
      t.equal((await tb.issuer.reg.devices.require(creds.deviceId as DeviceId)).status, 'active', 'not revoked');
    }
  });
});

t.test('renewal refused with a reason on …/rejected', async (t) => {
  const tb = await startTestBroker({ authFailBurst: 1000, authFailPerSec: 100 });
  t.teardown(() => tb.close());
  const clients: DeviceClient[] = [];
  t.teardown(async () => { for (const c of clients) await c.stop(); });
  const device = async (id: string, opts: { ttlMs?: number; credentialTtlMs?: number } = {}) => {
    const [creds] = await tb.provision([id], 'sensor', opts);
    const c = new DeviceClient({ credentials: creds!, backoff: { initialMs: 50, maxMs: 1000 } });
    clients.push(c);
    await c.start();
    return { c, creds: creds! };
  };

  t.test('another device\'s topic: ERR_FORBIDDEN_TOPIC, answered on the requester\'s own topic', async (t) => {
    const [a, b] = await tb.provision(['fb-1', 'fb-2']);
    const victim = await session(tb.url, 'fb-2', b!.accessToken);
    const s = await session(tb.url, 'fb-1', a!.accessToken);
    const ans = await s.request!({ requestId: 'steal-1' }, '$devices/fb-2/token/renew');
    t.same(ans, { kind: 'rejected', body: { requestId: 'steal-1', code: 'ERR_FORBIDDEN_TOPIC', message: 'a device may only renew its own token' } });
    // The sentinel: the victim's own request, answered after the broker handled the stolen one.
    t.equal((await victim.request!({ requestId: 'victim-own' })).kind, 'accepted', 'the other device renews itself');
    t.same(victim.answers.map((x) => x.body.requestId), ['victim-own'], 'the other device got nothing but its own answer');
    t.ok(s.client!.connected, 'the requester stays connected');
    await end(s.client);
    await end(victim.client);
  });

  t.test('malformed request: ERR_BAD_REQUEST (requestId echoed when readable)', async (t) => {
    const [d] = await tb.provision(['bad-1']);
    const s = await session(tb.url, 'bad-1', d!.accessToken);
    t.match(await s.request!(null, undefined, 'not json'), { kind: 'rejected', body: { requestId: null, code: 'ERR_BAD_REQUEST' } });
    t.match(await s.request!({ requestId: 'neg', ttlSeconds: -5 }), { kind: 'rejected', body: { requestId: 'neg', code: 'ERR_BAD_REQUEST' } });
    const short = await s.request!({ requestId: 'short', ttlSeconds: 60 });
    t.equal(short.kind, 'accepted');
    const left = Date.parse(short.body.accessTokenExpiresAt as string) - Date.now();
    t.ok(left > 55_000 && left <= 61_000, `ttlSeconds asks for a shorter token (${left} ms)`);
    await end(s.client);
  });

  t.test('above the rate limit: ERR_RATE_LIMITED', async (t) => {
    const { c } = await device('rl-1');
    const rejected: { code: string }[] = [];
    c.on('renewRejected', (r) => rejected.push(r));
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map(() => c.renewNow()));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const codes = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as DeviceError).code] : []));
    t.equal(ok, 3, 'the burst (3) is served');
    t.same(codes, ['ERR_RATE_LIMITED', 'ERR_RATE_LIMITED'], 'the rest is refused with ERR_RATE_LIMITED');
    t.same(rejected.map((r) => r.code), ['ERR_RATE_LIMITED', 'ERR_RATE_LIMITED'], "'renewRejected' emitted");
    t.ok(c.connected, 'still connected');
  });

  t.test('past the credential lifetime: ERR_CREDENTIAL_EXPIRED; the refresh credential then gets CONNACK 4', async (t) => {
    // The token may not outlive the credential at provisioning, so both are 3 s; the
    // broker keeps the session for the 5 s leeway after exp, long enough to ask.
    const [creds] = await tb.provision(['ce-1'], 'sensor', { ttlMs: 3000, credentialTtlMs: 3000 });
    const s = await session(tb.url, 'ce-1', creds!.accessToken);
    t.equal((await s.request!()).kind, 'accepted', 'renewal works while the credential lives');
    await sleep(Math.max(0, Date.parse(creds!.refreshCredentialExpiresAt) - Date.now()) + 100);
    t.match(await s.request!(), { kind: 'rejected', body: { code: 'ERR_CREDENTIAL_EXPIRED', message: /re-provision/ } });
    await end(s.client);
    t.equal((await connect(tb.url, { clientId: 'ce-1', username: 'ce-1', password: creds!.refreshCredential })).code, 4, 'refresh credential: CONNACK 4');
  });
});

/*
 * Revocation. The broker closes a revoked device's sessions within one watcher
 * poll (50 ms by default) and refuses every packet of a revoked session, so a
 * renewal request from a revoked device can only reach the responder inside that
 * window: the registry already says "revoked", the broker's memory not yet. A
 * broker that ignores its change feed (test-only `weaken.ignoreChangeFeed`, on
 * either engine) holds that window open, so the race is tested deterministically
 * rather than by luck. The responder reads the
 * registry itself, so it must refuse.
 */
t.test('renewal in the revocation window (registry revoked, broker not told yet)', async (t) => {
  const tb = await startTestBroker({ authFailBurst: 1000, authFailPerSec: 100 }, { weaken: { ignoreChangeFeed: true } });
  t.teardown(() => tb.close());
  const clients: DeviceClient[] = [];
  t.teardown(async () => { for (const c of clients) await c.stop(); });
  const [tokenDev, refreshDev, jtiDev] = await tb.provision(['rv-1', 'rv-2', 'rv-3']);

  t.test('token session: ERR_DEVICE_REVOKED, and the broker takes the registry\'s word from then on', async (t) => {
    const c = new DeviceClient({ credentials: tokenDev!, backoff: { initialMs: 50, maxMs: 1000 } });
    clients.push(c);
    await c.start();
    const rejected = new Promise<{ code: string }>((r) => c.once('renewRejected', r));
    await revokeDevices(tb.issuer.reg, ['rv-1' as DeviceId], 'stolen');
    await t.rejects(c.renewNow(), { code: 'ERR_DEVICE_REVOKED' });
    t.equal((await rejected).code, 'ERR_DEVICE_REVOKED');
    const dropped = waitFor(c, 'disconnected');
    await c.publish('devices/rv-1/telemetry', 'x').catch(() => {});
    await dropped;
    t.same(await waitFor(c, 'refused'), { connackCode: 5 }, 'closed on its next packet, then refused');
    await c.stop();
  });

  t.test('refresh session: ERR_DEVICE_REVOKED, no credential rotated', async (t) => {
    const s = await session(tb.url, 'rv-2', refreshDev!.refreshCredential);
    t.equal(s.code, 0);
    await revokeDevices(tb.issuer.reg, ['rv-2' as DeviceId], 'stolen');
    t.match(await s.request!(), { kind: 'rejected', body: { code: 'ERR_DEVICE_REVOKED', message: 'device is revoked' } });
    t.same(await states(tb, 'rv-2'), ['revoked'], 'nothing handed out');
    await end(s.client);
  });

  t.test('a token revoked on its own buys no successor: its session is closed, the device comes back via refresh', async (t) => {
    const c = new DeviceClient({ credentials: jtiDev!, backoff: { initialMs: 50, maxMs: 1000 } });
    clients.push(c);
    await c.start();
    await revokeToken(tb.issuer.reg, jtiOf(jtiDev!.accessToken) as Jti);
    const dropped = waitFor(c, 'disconnected');
    const back = waitFor<{ via: string }>(c, 'connected');
    await t.rejects(c.renewNow(), { code: 'ERR_DISCONNECTED' }, 'no accepted answer');
    await dropped;
    t.same(await back, { via: 'refresh' }, 'revoked token → CONNACK 5 → refresh credential → new token');
    t.not(jtiOf(c.credentials().accessToken), jtiOf(jtiDev!.accessToken));
    await c.stop();
  });
});


