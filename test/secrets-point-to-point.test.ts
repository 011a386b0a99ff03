// Issue 19, finding 1: renewal and claim answers are written to the connection that
// asked and to no one else (broker/answers.ts), and no profile, grant or token holds a
// `$` pattern (acl/reserved.ts). Real broker, real MQTT.js, real SQLite, a real
// redis-server read by PSUBSCRIBE. Absence is proven by a sentinel sent after the secrets.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import { createClaim } from '../operations/index.js';
import { openIssuer } from '../provisioning/index.js';
import type { ProfileName } from '../registry/index.js';
import { brokerLogLines, connect, connectDevice, startTestBroker, subscribeGranted, type TestBroker } from './helpers/broker.js';
import { claimOnce } from './helpers/claim-client.js';
import { runCli } from './helpers/cli.js';
import { startCluster, until } from './helpers/cluster.js';
import { signWith } from './helpers/hostile-jwt.js';
import { authCount } from './helpers/hostile-util.js';
import { renewalSession } from './helpers/renewal-session.js';
import { registryTargetIn } from './helpers/backend.js';

/** A token signed with the registry's active key, carrying any ACL (as someone holding the key could mint). */
function handMinted(tb: Pick<TestBroker, 'issuer'>, sub: string, acl: { pub: string[]; sub: string[] }): string {
  const { settings, keyring } = tb.issuer;
  const signer = keyring.signer!;
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: settings.issuer, aud: settings.audience, sub, iat: now, exp: now + 600, jti: randomBytes(16).toString('base64url'), acl };
  return signWith(signer.keyObject!, { alg: signer.alg, kid: signer.kid, typ: 'JWT' }, claims, signer.alg);
}

/** The messages a client receives from now on, as topic and payload. */
function inbox(client: MqttClient): { topic: string; payload: string }[] {
  const got: { topic: string; payload: string }[] = [];
  client.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }));
  return got;
}

type Listener = (packet: { topic: string; payload: Buffer | string }, cb: () => void) => void;

/** Waits, up to `ms`, for `check` to hold. */
const waitFor = (what: string, check: () => boolean, ms = 10_000) => until(what, check, ms);

/** The secrets of accepted renewal and claim answers. */
function secretsOf(body: Record<string, unknown>): string[] {
  return ['accessToken', 'refreshCredential'].map((k) => body[k]).filter((v): v is string => typeof v === 'string');
}

t.test('a token whose ACL holds a $ pattern is refused at CONNECT (CONNACK 5), cached or not', async (t) => {
  const tb = await startTestBroker({ authFailBurst: 1000, authFailPerSec: 100 });
  t.teardown(() => tb.close());
  await tb.provision(['spy-1', 'victim-1']);

  const fair = handMinted(tb, 'spy-1', { pub: ['devices/spy-1/telemetry'], sub: ['devices/spy-1/#'] });
  const ok = await connectDevice(tb.url, { deviceId: 'spy-1', accessToken: fair });
  t.equal(ok.code, 0, 'control: a hand-signed token without a $ pattern is accepted');
  await ok.client?.endAsync();

  const cases: [string, string, { pub: string[]; sub: string[] }][] = [
    ['subscribe $devices/#', 'spy-1', { pub: ['devices/spy-1/telemetry'], sub: ['devices/spy-1/#', '$devices/#'] }],
    ['subscribe $claims/#', 'spy-1', { pub: [], sub: ['$claims/#'] }],
    ['publish on another device\'s renew topic', 'spy-1', { pub: ['$devices/victim-1/token/renew'], sub: [] }],
    ['a grant holding $SYS/#', 'grant:spy', { pub: [], sub: ['$SYS/#'] }],
  ];
  for (const [what, sub, acl] of cases) {
    const token = handMinted(tb, sub, acl);
    for (const attempt of ['first', 'again (a cached verification must not let it in)']) {
      const r = await connect(tb.url, { clientId: sub, username: sub, password: token });
      t.equal(r.code, 5, `${what}, ${attempt}: CONNACK 5`);
      r.client?.end(true);
    }
    t.notOk(brokerLogLines.some((l) => l.includes(token)), `${what}: the token is in no log line`);
  }
  t.equal(await authCount(tb.broker, { reason: 'acl_reserved_pattern' }), cases.length * 2, 'each refusal counted as acl_reserved_pattern');
});

t.test('renewal and claim answers reach the asking connection only, whatever others subscribed to', async (t) => {
  // The subscribe check off (a test-only switch, in code), so that a session holds the
  // filters an attacker wants: what is left between it and the secrets is how they are sent.
  const tb = await startTestBroker({ authFailBurst: 1000, authFailPerSec: 100 }, { weaken: { skipSubscribeCheck: true } });
  t.teardown(() => tb.close());
  const [victim, spy, observer] = [...await tb.provision(['victim-2', 'spy-2']), ...await tb.provision(['observer-2'], 'observer')];
  const credential = (await createClaim(tb.issuer.reg, { name: 'line9', profile: 'sensor', brokerUrl: tb.url, maxDevices: 5 })).credential;

  const s = await connectDevice(tb.url, spy!);
  t.teardown(() => s.client?.end(true));
  const spyGot = inbox(s.client!);
  for (const f of ['$devices/victim-2/token/#', '$devices/#', '$claims/#', '#', 'devices/victim-2/telemetry']) {
    t.equal(await subscribeGranted(s.client!, f), 1, `the spy holds ${f}`);
  }
  const o = await connectDevice(tb.url, observer!);
  t.teardown(() => o.client?.end(true));
  const observerGot = inbox(o.client!);
  t.equal(await subscribeGranted(o.client!, 'devices/#'), 1, 'the observer profile holds devices/#');
  // An in-process reader of the broker's emitter: what a bus would carry.
  // aedes' emitter (its `mq`, untyped in aedes 1.2): every publish that goes through the broker passes it.
  const mq = (tb.broker.context.aedes as unknown as { mq: { on(f: string, fn: Listener): void; removeListener(f: string, fn: Listener): void } }).mq;
  const onMq: string[] = [];
  const listen: Listener = (packet, cb) => { onMq.push(`${packet.topic} ${packet.payload.toString()}`); cb(); };
  for (const f of ['$devices/#', '$claims/#', 'devices/#']) mq.on(f, listen);
  t.teardown(() => { for (const f of ['$devices/#', '$claims/#', 'devices/#']) mq.removeListener(f, listen); });

  const secrets: string[] = [];
  const byToken = await renewalSession(tb.url, 'victim-2', victim!.accessToken);
  const a1 = await byToken.request!();
  t.equal(a1.kind, 'accepted', 'the token session gets its renewal answer');
  secrets.push(...secretsOf(a1.body));
  await byToken.client!.endAsync();
  const byRefresh = await renewalSession(tb.url, 'victim-2', victim!.refreshCredential);
  const a2 = await byRefresh.request!();
  t.equal(a2.kind, 'accepted', 'the refresh session gets its renewal answer');
  t.match(a2.body, { refreshCredential: /^cbrt_/ });
  secrets.push(...secretsOf(a2.body));
  const rejected = await byRefresh.request!({ requestId: 'r2', ttlSeconds: -1 });
  t.equal(rejected.kind, 'rejected', 'a refusal goes to the asker too');
  await byRefresh.client!.endAsync();
  const claimed = await claimOnce(tb.url, { id: 'unit-0001', claim: 'line9', credential });
  t.equal(claimed.answer, 'accepted', 'the claim session gets its answer');
  t.ok(claimed.closedAfterMs !== null, 'and is closed after it');
  secrets.push(...secretsOf(claimed.body!));
  t.equal(secrets.length, 5, 'two access tokens, a refresh credential, and a claimed unit\'s pair');

  // The sentinel, sent after every answer: once it has arrived, anything sent before it would have.
  const dev = await connectDevice(tb.url, { deviceId: 'victim-2', accessToken: a2.body.accessToken as string });
  t.teardown(() => dev.client?.end(true));
  await dev.client!.publishAsync('devices/victim-2/telemetry', 'sentinel-2', { qos: 1 });
  await waitFor('the sentinel at the spy', () => spyGot.some((m) => m.payload === 'sentinel-2'));
  await waitFor('the sentinel at the observer', () => observerGot.some((m) => m.payload === 'sentinel-2'));
  await waitFor('the sentinel on the emitter', () => onMq.some((m) => m.endsWith(' sentinel-2')));

  const leaked = (texts: string[]) => texts.filter((x) => secrets.some((secret) => x.includes(secret)));
  t.same(spyGot.filter((m) => m.topic.startsWith('$')), [], 'the spy got no $ topic message');
  t.same(leaked(spyGot.map((m) => m.payload)), [], 'nor any secret');
  t.same(leaked(observerGot.map((m) => m.payload)), [], 'the observer got no secret');
  t.same(onMq.filter((m) => /\/(accepted|rejected) /.test(m)), [], 'no answer went through the emitter');
  t.same(leaked(onMq), [], 'nor any secret');
});

t.test('a PSUBSCRIBE * reader of the bus sees no access token and no refresh credential (serve --workers 2 --bus)', async (t) => {
  const c = await startCluster(t, 'workers');
  const reader = new Redis(c.redis.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
  t.teardown(() => reader.disconnect());
  await reader.connect();
  const captured: Buffer[] = [];
  reader.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => captured.push(Buffer.concat([channel, Buffer.from(' '), message])));
  await reader.psubscribe('*');
  const seen = (text: string) => captured.some((b) => b.includes(text));

  const [dev] = await c.provision(['bus-dev-1']);
  const secrets: string[] = [];
  const byToken = await renewalSession(c.url(), 'bus-dev-1', dev!.accessToken);
  t.equal(byToken.code, 0);
  const a1 = await byToken.request!();
  t.equal(a1.kind, 'accepted', 'the renewal answer reaches the device on its worker');
  secrets.push(...secretsOf(a1.body));
  await byToken.client!.endAsync();
  const byRefresh = await renewalSession(c.url(), 'bus-dev-1', dev!.refreshCredential, { clean: false });
  const a2 = await byRefresh.request!();
  t.equal(a2.kind, 'accepted', 'a persistent refresh session gets its answer too');
  secrets.push(...secretsOf(a2.body));
  await byRefresh.client!.endAsync();
  const credential = (await createClaim(c.nodes[0]!.issuer.reg, { name: 'busline', profile: 'sensor', brokerUrl: c.url(), maxDevices: 5 })).credential;
  const claimed = await claimOnce(c.url(), { id: 'bus-unit-1', claim: 'busline', credential });
  t.equal(claimed.answer, 'accepted', 'the claim answer reaches the unit');
  secrets.push(...secretsOf(claimed.body!));
  t.equal(secrets.length, 5);

  const again = await c.connectOn({ clientId: 'bus-dev-1', username: 'bus-dev-1', password: a2.body.accessToken as string });
  t.teardown(() => again.client?.end(true));
  // The bus is sealed, so the sentinel is known by its channel (topics stay readable), published after every answer.
  // It crosses Redis because an observer on the other worker subscribes to it (a publish nobody elsewhere wants stays on its worker).
  const [obs] = await c.provision(['bus-obs-1'], 'observer');
  const observer = await c.connectAway(again.place, { clientId: obs!.deviceId, username: obs!.deviceId, password: obs!.accessToken });
  t.teardown(() => observer.client?.end(true));
  await observer.client!.subscribeAsync('devices/bus-dev-1/telemetry', { qos: 1 });
  const from = captured.length;
  await again.client!.publishAsync('devices/bus-dev-1/telemetry', `sentinel-${randomBytes(6).toString('hex')}`, { qos: 1 });
  await waitFor('the sentinel on Redis', () => captured.slice(from).some((b) => b.includes('devices/bus-dev-1/telemetry ')), 20_000);
  t.same(secrets.filter(seen), [], 'no secret crossed Redis');
  t.notOk(seen('/token/accepted') || seen('/provision/accepted'), 'no answer crossed Redis');
});

t.test('profile set refuses $ patterns (exit 2, one line, registry unchanged); a stored one mints nothing', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir, 'r.db');
  const cli = (...args: string[]) => runCli([...args, '--db', db]);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const before = (await cli('profile', 'list', '--json')).stdout;

  const refusals: [string[], RegExp][] = [
    [['profile', 'set', 'spy', '--pub', 'x/{device}', '--sub', '$devices/#', '$claims/#'], /profile "spy": ACL pattern "\$devices\/#" is a broker topic/],
    [['profile', 'set', 'observer', '--sub', 'devices/#', '$claims/+/provision/accepted'], /"\$claims\/\+\/provision\/accepted" is a broker topic/],
    [['profile', 'set', 'sensor', '--pub', '$SYS/broker/x'], /"\$SYS\/broker\/x" is a broker topic/],
  ];
  for (const [args, message] of refusals) {
    const r = await cli(...args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, message);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.equal(r.stdout, '', 'nothing on stdout');
  }
  t.equal((await cli('profile', 'list', '--json')).stdout, before, 'the registry is unchanged');

  // A profile stored before the rule (written straight into the registry, as an old version could).
  t.equal((await cli('profile', 'set', 'legacy', '--pub', 'devices/{device}/x', '--sub', 'devices/{device}/y')).code, 0);
  t.equal((await cli('provision', 'old-dev', '--profile', 'legacy', '--out', join(dir, 'creds'))).code, 0);
  const issuer = await openIssuer(db);
  await issuer.reg.profiles.set({ name: 'legacy' as ProfileName, publish: ['devices/{device}/x'], subscribe: ['$devices/#'], tokenTtlMs: 3_600_000 });
  await issuer.reg.close();
  const stored: [string[], string][] = [
    [['token', 'old-dev'], 'credbroker token'],
    [['provision', 'new-dev', '--profile', 'legacy', '--out', join(dir, 'creds')], 'credbroker provision'],
    [['profile', 'set', 'legacy', '--ttl', '2h'], 'profile set keeping the pattern'],
  ];
  for (const [args, what] of stored) {
    const r = await cli(...args);
    t.equal(r.code, 2, `${what}: exit 2`);
    t.match(r.stderr, /"\$devices\/#" is a broker topic/, `${what}: the line names the pattern`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
  }
  t.equal((await cli('profile', 'set', 'legacy', '--sub', 'devices/{device}/y')).code, 0, 'replacing the pattern fixes the profile');
  t.equal((await cli('token', 'old-dev')).code, 0, 'and its devices get tokens again');
});
