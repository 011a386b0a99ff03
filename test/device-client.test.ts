import t from 'tap';
import { readFileSync, statSync } from 'node:fs';
import { SignJWT } from 'jose';
import { revokeDevices } from '../operations/index.js';
import { writeCredentialsFile, type DeviceCredentials } from '../provisioning/index.js';
import type { DeviceId, ProfileName } from '../registry/index.js';
import { Backoff, backoffCapMs, DeviceClient, renewalDelayMs, tokenLifetimeMs, type RenewedEvent } from '../device/index.js';
import { brokerLogLines, connectDevice, startTestBroker, type TestBroker } from './helpers/broker.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A random source that replays `values` in turn. */
const seq = (...values: number[]) => { let i = 0; return () => values[i++ % values.length]!; };

/** Records every event a client emits (to check that none carries a secret). */
function record(c: DeviceClient): string[] {
  const seen: string[] = [];
  for (const ev of ['connected', 'disconnected', 'renewed', 'renewRejected', 'refused', 'error'] as const) {
    c.on(ev, (arg: unknown) => seen.push(`${ev} ${arg instanceof Error ? `${arg.message} ${(arg as { code?: string }).code}` : JSON.stringify(arg)}`));
  }
  return seen;
}

function noSecrets(t: Test, texts: readonly string[], creds: readonly DeviceCredentials[]): void {
  const secrets = creds.flatMap((c) => [c.accessToken, c.refreshCredential]);
  const leaked = texts.filter((line) => secrets.some((s) => line.includes(s)) || /cbrt_[A-Za-z0-9_-]{20}/.test(line) || /eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(line));
  t.same(leaked, [], 'no token or refresh credential in events, errors or broker logs');
}

type Test = Pick<typeof t, 'same'>;

const once = <T>(c: DeviceClient, ev: 'connected' | 'disconnected' | 'refused' | 'renewed', ms = 10_000) =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${ev}' within ${ms} ms`)), ms);
    c.once(ev, (arg: unknown) => { clearTimeout(timer); resolve(arg as T); });
  });

t.test('backoff: capped exponential with full jitter', async (t) => {
  t.same([0, 1, 2, 3, 4, 5, 6, 7, 10, 60].map((n) => backoffCapMs(n, 500, 30_000)), [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000], 'caps double from 500 ms up to 30 s');
  const top = new Backoff({ random: () => 0.999999 });
  t.same(Array.from({ length: 8 }, () => top.next()), [499, 999, 1999, 3999, 7999, 15_999, 29_999, 29_999], 'with random→1 each wait is just under its cap');
  const bottom = new Backoff({ random: () => 0 });
  t.same(Array.from({ length: 4 }, () => bottom.next()), [0, 0, 0, 0], 'full jitter: a wait can be 0');
  const real = new Backoff({ initialMs: 100, maxMs: 1000 });
  for (let i = 0; i < 200; i++) {
    const cap = backoffCapMs(real.attempts, 100, 1000);
    const w = real.next();
    if (!(w >= 0 && w < cap)) t.fail(`wait ${w} outside [0, ${cap})`);
  }
  const spread = new Set(Array.from({ length: 50 }, () => new Backoff({ initialMs: 1000 }).next()));
  t.ok(spread.size > 40, 'first waits of a fleet are spread out, not in lockstep');
  const b = new Backoff({ initialMs: 500, maxMs: 30_000, random: seq(0.5) });
  b.next(); b.next(); b.next();
  b.reset();
  t.equal(b.next(), 250, 'reset starts again from initialMs');
  const r = new Backoff({ initialMs: 500, maxMs: 30_000, random: seq(0, 0.999999) });
  t.equal(r.refused(), 15_000, 'a refused device waits at least maxMs/2');
  t.equal(r.refused(), 29_999, '... and less than maxMs');
  t.equal(backoffCapMs(r.attempts, 500, 30_000), 30_000, 'after a refusal the next backoff is at the cap');
});

t.test('renewal schedule: 80 % ± 10 % of the lifetime, clamped', async (t) => {
  const now = 1_000_000;
  const L = 3_600_000;
  const at = (random: number, extra: Partial<Parameters<typeof renewalDelayMs>[0]> = {}) => renewalDelayMs({ expiresAtMs: now + L, lifetimeMs: L, nowMs: now, random: () => random, ...extra });
  t.equal(at(0.5), 0.8 * L, 'no jitter drawn: at 80 %');
  t.equal(at(0), 0.7 * L, 'earliest: 70 %');
  t.equal(at(0.999999), Math.floor(0.8 * L + 0.1 * L * (2 * 0.999999 - 1)), 'latest: just under 90 %');
  t.equal(at(0.5, { renewAtFraction: 0.5, jitterFraction: 0 }), 0.5 * L, 'fractions are options');
  t.equal(at(1, { renewAtFraction: 1, jitterFraction: 0 }), L - 30_000, 'never later than 30 s (or 5 %) before expiry');
  t.equal(renewalDelayMs({ expiresAtMs: now - 1, lifetimeMs: L, nowMs: now }), 0, 'expired: at once');
  const old = renewalDelayMs({ expiresAtMs: now + 0.1 * L, lifetimeMs: L, nowMs: now, random: () => 0.5 });
  t.ok(old >= 0 && old <= 0.1 * L, `past its renewal point: soon, spread within the jitter window (${old} ms)`);
  const fleet = new Set(Array.from({ length: 100 }, () => renewalDelayMs({ expiresAtMs: now + L, lifetimeMs: L, nowMs: now })));
  t.ok(fleet.size > 90, 'a fleet renews at different instants');
  const jwt = `x.${Buffer.from(JSON.stringify({ iat: 100, exp: 105 })).toString('base64url')}.y`;
  t.equal(tokenLifetimeMs(jwt), 5000, 'lifetime read from iat/exp');
  t.equal(tokenLifetimeMs('garbage'), null);
});

t.test('device client against a real broker', async (t) => {
  const tb: TestBroker = await startTestBroker({ authFailBurst: 1000, authFailPerSec: 100 });
  t.teardown(() => tb.close());
  const clients: DeviceClient[] = [];
  t.teardown(async () => { for (const c of clients) await c.stop(); });
  const allCreds: DeviceCredentials[] = [];
  const recorded: string[][] = [];
  const client = (path: string, extra: Partial<ConstructorParameters<typeof DeviceClient>[0]> = {}) => {
    const c = new DeviceClient({ credentialsPath: path, backoff: { initialMs: 50, maxMs: 1000 }, ...extra });
    clients.push(c);
    recorded.push(record(c));
    return c;
  };
  const provisionTo = async (id: string, profile = 'sensor', opts: { ttlMs?: number; credentialTtlMs?: number } = {}) => {
    const [creds] = await tb.provision([id], profile, opts);
    allCreds.push(creds!);
    return { creds: creds!, path: writeCredentialsFile(tb.dir, creds!) };
  };
  const [obsCreds] = await tb.provision(['observer-1'], 'observer');
  const observer = (await connectDevice(tb.url, obsCreds!)).client!;
  t.teardown(() => observer.end(true));
  allCreds.push(obsCreds!);

  t.test('a 5 s token: stays connected across 5+ renewals, telemetry keeps flowing to an observer', async (t) => {
    await tb.issuer.reg.profiles.set({ name: 'fast' as ProfileName, publish: ['devices/{device}/telemetry'], subscribe: ['devices/{device}/commands/#'], tokenTtlMs: 5000 });
    const { creds, path } = await provisionTo('fast-1', 'fast');
    const firstDeadline = Date.parse(creds.accessTokenExpiresAt) + 5000;
    const received: { n: number; at: number }[] = [];
    await observer.subscribeAsync('devices/fast-1/telemetry', { qos: 1 });
    observer.on('message', (topic, payload) => { if (topic === 'devices/fast-1/telemetry') received.push({ n: Number(payload.toString()), at: Date.now() }); });
    const dev = client(path);
    const renewals: RenewedEvent[] = [];
    let drops = 0;
    dev.on('renewed', (ev) => renewals.push(ev));
    dev.on('disconnected', () => drops++);
    await dev.start();
    let sent = 0;
    const started = Date.now();
    while (renewals.length < 5 && Date.now() - started < 30_000) {
      await dev.publish('devices/fast-1/telemetry', String(sent++), { qos: 1 });
      await sleep(200);
    }
    await sleep(300);
    t.ok(renewals.length >= 5, `${renewals.length} renewals in ${Date.now() - started} ms`);
    t.equal(drops, 0, 'never disconnected');
    t.ok(dev.connected, 'still connected');
    t.ok(Date.now() > firstDeadline, 'ran past the first token\'s expiry + leeway, when the broker would have closed an unrenewed session');
    t.ok(renewals.every((r) => !r.rotatedRefresh && r.roundTripMs < 2000), 'token renewals do not rotate the refresh credential');
    t.equal(received.length, sent, `observer received all ${sent} QoS 1 messages`);
    t.same(received.map((r) => r.n), Array.from({ length: sent }, (_, i) => i), 'in order, none missing');
    const gaps = received.slice(1).map((r, i) => r.at - received[i]!.at);
    t.ok(Math.max(...gaps) < 1500, `no stall in the flow (largest gap ${Math.max(...gaps)} ms)`);
    const onDisk = JSON.parse(readFileSync(path, 'utf8')) as DeviceCredentials;
    t.equal(onDisk.accessToken, dev.credentials().accessToken, 'each renewed token is persisted');
    t.equal(onDisk.refreshCredential, creds.refreshCredential, 'refresh credential unchanged by token renewals');
    await dev.stop();
    t.notOk(dev.connected);
  });

  t.test('offline past the token expiry: back through the refresh credential, credentials file updated (0600)', async (t) => {
    // 4 s: the first CONNECT must find over a second left (the client's minimum) even on a loaded CI box.
    const { creds, path } = await provisionTo('offline-1', 'sensor', { ttlMs: 4000 });
    const dev = client(path);
    const first = once<{ via: string }>(dev, 'connected');
    await dev.start();
    t.same(await first, { via: 'token' });
    await dev.stop();
    await sleep(Math.max(0, Date.parse(creds.accessTokenExpiresAt) - Date.now()) + 100);
    const back = once<{ via: string }>(dev, 'connected');
    const renewed = once<RenewedEvent>(dev, 'renewed');
    await dev.start();
    t.same(await back, { via: 'refresh' }, 'connected via the refresh credential, no operator action');
    t.equal((await renewed).rotatedRefresh, true, 'refresh credential rotated');
    const onDisk = JSON.parse(readFileSync(path, 'utf8')) as DeviceCredentials;
    t.not(onDisk.refreshCredential, creds.refreshCredential, 'new refresh credential on disk');
    t.not(onDisk.accessToken, creds.accessToken, 'new access token on disk');
    t.ok(Date.parse(onDisk.accessTokenExpiresAt) > Date.now() + 60_000, 'with a fresh expiry (profile lifetime)');
    t.same(onDisk, dev.credentials(), 'disk and memory agree');
    t.equal(statSync(path).mode & 0o777, 0o600, 'mode 0600');
    t.equal(await dev.subscribe('devices/offline-1/commands/#', { qos: 1 }), 1, 'a full session (not the restricted one)');
    await dev.stop();
  });

  t.test('CONNACK 4 on a token the device thinks is valid (clock off): falls back to the refresh credential', async (t) => {
    const { creds, path } = await provisionTo('clock-1');
    const { settings } = tb.issuer;
    const signer = tb.issuer.keyring.signer!;
    const nowS = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ iss: settings.issuer, aud: settings.audience, sub: 'clock-1', jti: 'y'.repeat(22), acl: { pub: [], sub: [] } })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid }).setIssuedAt(nowS - 7200).setExpirationTime(nowS - 600).sign(signer.privateKey);
    const lying = { ...creds, accessToken: expired, accessTokenExpiresAt: new Date(Date.now() + 3_600_000).toISOString() };
    allCreds.push(lying);
    writeCredentialsFile(tb.dir, lying);
    const dev = client(path);
    const conn = once<{ via: string }>(dev, 'connected');
    await dev.start();
    t.same(await conn, { via: 'refresh' });
    t.not(dev.credentials().accessToken, expired);
    await dev.stop();
  });

  t.test('app subscriptions come back after a reconnect; a refused filter answers 128', async (t) => {
    const { path } = await provisionTo('resub-1');
    const dev = client(path);
    await dev.start();
    t.equal(await dev.subscribe('devices/resub-1/commands/#', { qos: 1 }), 1);
    t.equal(await dev.subscribe('devices/#', { qos: 1 }), 128, 'refused, not thrown');
    const dropped = once<{ reason: string }>(dev, 'disconnected');
    const again = once<{ via: string }>(dev, 'connected');
    tb.broker.context.sessions.kickDevice('resub-1', 'shutdown');
    t.type((await dropped).reason, 'string');
    t.same(await again, { via: 'token' }, 'reconnected with the same token');
    const got = new Promise<string>((r) => dev.once('message', (topic, payload) => r(`${topic} ${payload}`)));
    await observer.publishAsync('devices/resub-1/commands/reboot', 'now', { qos: 1 });
    t.equal(await got, 'devices/resub-1/commands/reboot now', 'subscription restored');
    await t.rejects(new DeviceClient({ credentialsPath: path }).publish('x', 'y'), { code: 'ERR_NOT_CONNECTED' });
    await dev.stop();
    await t.rejects(dev.publish('devices/resub-1/telemetry', 'x'), { code: 'ERR_NOT_CONNECTED' }, 'stopped: no reconnect');
  });

  t.test('a revoked device: kicked, then refused (CONNACK 5) and retries only slowly', async (t) => {
    const { path } = await provisionTo('revoked-1');
    const dev = client(path);
    await dev.start();
    const dropped = once(dev, 'disconnected');
    const refused = once<{ connackCode: number }>(dev, 'refused', 5000);
    await revokeDevices(tb.issuer.reg, ['revoked-1' as DeviceId], 'test');
    await dropped;
    t.same(await refused, { connackCode: 5 }, 'refused with CONNACK 5 (token and refresh credential both)');
    let more = 0;
    dev.on('refused', () => more++);
    await sleep(2000);
    t.ok(more <= 4, `backed off to the max (1 s here): ${more} more refusals in 2 s (initial backoff is 50 ms)`);
    const fresh = client(path);
    await t.rejects(fresh.start(), { code: 'ERR_REFUSED' }, 'start() of a revoked device rejects');
    await fresh.stop();
    await dev.stop();
  });

  t.test('nothing secret in events, errors or broker logs', async (t) => {
    for (const c of clients) await c.stop();
    for (const c of clients) allCreds.push(c.credentials());
    t.ok(brokerLogLines.length > 0, 'broker logged');
    const events = recorded.flat();
    t.ok(events.some((e) => e.startsWith('renewed')) && events.some((e) => e.startsWith('refused')), `${events.length} events recorded`);
    noSecrets(t, [...events, ...brokerLogLines], allCreds);
  });
});
