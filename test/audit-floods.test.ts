// Floods do not become audit floods (issue 10 #5): refused logins past a few per
// address, and every throttled one, are counted into one summary row per address
// and window; a device renewing faster than its rate is refused, then
// disconnected, with a summary row instead of a row per request. The last test
// floods both ways for 10 s (60 s under `npm run test:soak`) and extrapolates the
// registry's growth to an hour.
import t from 'tap';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { DeviceCredentials } from '../provisioning/index.js';
import type { AuditEvent } from '../registry/index.js';
import { closed, connectDevice, startTestBroker, type TestBroker } from './helpers/broker.js';
import { signWith } from './helpers/hostile-jwt.js';
import { connectPacket, floodFromChild, scrape, SOAK, sleep } from './helpers/hostile-util.js';

/** Audit rows added since `afterId`, oldest first, after the broker's tally and buffer were written out. */
async function rowsSince(tb: TestBroker, afterId: number): Promise<AuditEvent[]> {
  tb.broker.context.tally.flush();
  await tb.broker.context.audit.flush();
  return (await tb.issuer.reg.audit.query({ limit: null })).filter((r) => r.id > afterId).reverse();
}
const lastId = async (tb: TestBroker) => (await tb.issuer.reg.audit.query({ limit: 1 }))[0]?.id ?? 0;
const details = (r: AuditEvent) => r.details ?? {};

/** Well-formed tokens signed by an attacker's key under the registry's kid: each would cost a signature check. */
function forgedPackets(tb: TestBroker, n: number): Buffer[] {
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { settings, keyring } = tb.issuer;
  const now = Math.floor(Date.now() / 1000);
  return Array.from({ length: n }, (_, i) => {
    const sub = `victim-${i}`;
    const token = signWith(attacker.privateKey, { alg: 'ES256', kid: keyring.signer!.kid, typ: 'JWT' },
      { iss: settings.issuer, aud: settings.audience, sub, iat: now, exp: now + 3600, jti: randomBytes(16).toString('base64url'), acl: { pub: [], sub: [] } });
    return connectPacket({ clientId: sub, username: sub, password: token });
  });
}

/** Publishes `n` renewal requests as fast as the socket takes them; resolves when the broker has closed the session (or after `ms`). */
async function renewalFlood(tb: TestBroker, creds: DeviceCredentials, n: number, ms = 10_000): Promise<{ code: number; closed: boolean }> {
  const { client, code } = await connectDevice(tb.url, creds);
  if (!client) return { code, closed: false };
  const gone = closed(client);
  const topic = `$devices/${creds.deviceId}/token/renew`;
  for (let i = 0; i < n && client.connected; i++) client.publish(topic, JSON.stringify({ requestId: `flood-${i}` }), { qos: 0 });
  const ended = await Promise.race([gone.then(() => true), sleep(ms).then(() => false)]);
  client.end(true);
  return { code, closed: ended };
}

t.test('a forged-token flood: a few rows per address, then one summary row per address and window', async (t) => {
  const tb = await startTestBroker({ auditSummaryMs: 600_000, deviceConnectBurst: 10_000, deviceConnectPerSec: 1000 });
  t.teardown(() => tb.close());
  const { auditRowsPerKey, authFailBurst, authFailPerSec } = tb.broker.context.config;
  const addresses = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];
  const ATTEMPTS = 2000;
  const from = await lastId(tb);
  const flood = await floodFromChild(tb.broker.ports.mqtt!, forgedPackets(tb, 50), ATTEMPTS, 50, addresses);
  t.equal(flood.child.code, 0, `the flood child exited cleanly ${flood.child.stderr}`);
  t.comment(`${ATTEMPTS} attempts in ${flood.seconds.toFixed(1)} s; CONNACK codes ${JSON.stringify(flood.codes)}`);

  const rows = await rowsSince(tb, from);
  const single = rows.filter((r) => r.action === 'auth.refused');
  const summaries = rows.filter((r) => r.action === 'auth.refused.summary');
  t.comment(`audit rows: ${single.length} auth.refused + ${summaries.length} auth.refused.summary (one row per attempt before: ${ATTEMPTS})`);
  t.ok(single.length <= auditRowsPerKey * addresses.length, `at most ${auditRowsPerKey} rows per address: ${single.length}`);
  t.equal(summaries.length, addresses.length, 'one summary row per address and window');
  t.same(summaries.map((r) => details(r).address).sort(), addresses, 'each names its address');
  const counted = summaries.reduce((a, r) => a + (details(r).count as number), 0);
  t.equal(counted + single.length, ATTEMPTS, 'every attempt is accounted for: written or counted');
  const throttled = summaries.reduce((a, r) => a + ((details(r).reasons as Record<string, number>).throttled ?? 0), 0);
  // Each address's bucket refills while the flood runs, and a loaded box makes the flood slower.
  const letThrough = Math.ceil(authFailBurst + authFailPerSec * flood.seconds) + 5;
  t.ok(throttled >= ATTEMPTS - addresses.length * letThrough, `throttled attempts are counted, never written: ${throttled}`);
  t.notOk(single.some((r) => details(r).reason === 'throttled'), 'no row for a throttled attempt');
  t.equal(await scrape(tb.broker.ports.http!, 'credbroker_audit_events_summarized_total', { action: 'auth.refused' }), counted, 'the counted ones show in /metrics');
  t.ok(summaries.every((r) => !/eyJ/.test(JSON.stringify(r.details))), 'no token in a summary');
});

t.test('a renewal flood: refused over the rate, disconnected after repeated abuse, summarised', async (t) => {
  const tb = await startTestBroker({ auditSummaryMs: 600_000 });
  t.teardown(() => tb.close());
  const { renewAbuseLimit, renewBurst, auditRowsPerKey } = tb.broker.context.config;
  const [creds] = await tb.provision(['flood-1']);
  const from = await lastId(tb);
  const res = await renewalFlood(tb, creds!, 2000);
  t.equal(res.code, 0, 'the device connected');
  t.ok(res.closed, 'the broker closed the flooding session');
  t.equal(await scrape(tb.broker.ports.http!, 'credbroker_session_kicks_total', { reason: 'renew_abuse' }), 1, 'kicked once, counted as renew_abuse');
  const limited = await scrape(tb.broker.ports.http!, 'credbroker_renewals_total', { result: 'rejected', reason: 'ERR_RATE_LIMITED' });
  t.ok(limited >= renewAbuseLimit, `${limited} refused for rate (disconnect at ${renewAbuseLimit})`);

  await sleep(500); // the burst's renewals are minted asynchronously
  const rows = (await rowsSince(tb, from)).filter((r) => r.deviceId === 'flood-1');
  const by = (a: string) => rows.filter((r) => r.action === a);
  t.comment(`rows for the device: ${JSON.stringify(rows.map((r) => r.action))}`);
  t.ok(by('token.renew').length <= renewBurst, 'the burst was served');
  t.equal(by('token.renew_rejected').length, 0, 'rate refusals are never written one by one');
  t.ok(by('token.renew_rejected').length <= auditRowsPerKey, 'nor other refusals past a few');
  t.equal(by('token.renew_abuse').length, 1, 'one row says the session was closed for abuse');
  const summary = by('token.renew_rejected.summary');
  t.equal(summary.length, 1, 'one summary row for the device');
  t.equal((details(summary[0]!).reasons as Record<string, number>).ERR_RATE_LIMITED, limited, 'it counts every refusal');
  t.ok(rows.length <= renewBurst + 2, `${rows.length} rows for ${limited + renewBurst} requests answered`);

  // The device may come back (within its connect rate) and renew normally.
  const again = await connectDevice(tb.url, creds!);
  t.equal(again.code, 0, 'it can reconnect');
  again.client?.end(true);
});

const FLOOD_MS = SOAK ? 60_000 : 10_000;
const FLOOD_ADDRESSES = SOAK ? 500 : 50;

t.test(`${FLOOD_MS / 1000} s of login and renewal floods: the registry's growth, extrapolated to an hour`, async (t) => {
  const tb = await startTestBroker({ deviceConnectBurst: 10_000, deviceConnectPerSec: 1000 });
  t.teardown(() => tb.close());
  const { config } = tb.broker.context;
  const flooders = await tb.provision(Array.from({ length: 5 }, (_, i) => `renew-flood-${i}`));
  const addresses = Array.from({ length: FLOOD_ADDRESSES }, (_, i) => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`);
  const packets = forgedPackets(tb, 100);
  const size = async () => { const s = await tb.issuer.reg.space.stats(); return (s.pages - (s.freePages ?? 0)) * s.pageSize; };
  tb.broker.context.tally.flush();
  await tb.broker.context.audit.flush();
  const bytes0 = await size();
  const from = await lastId(tb);
  const started = performance.now();
  let attempts = 0;
  let renewRequests = 0;
  let kicked = 0;
  const logins = (async () => {
    while (performance.now() - started < FLOOD_MS) {
      const f = await floodFromChild(tb.broker.ports.mqtt!, packets, 2000, 100, addresses);
      attempts += Object.values(f.codes).reduce((a, n) => a + n, 0);
    }
  })();
  const renewals = (async () => {
    for (let i = 0; performance.now() - started < FLOOD_MS; i++) {
      const r = await renewalFlood(tb, flooders[i % flooders.length]!, 500, 5000);
      renewRequests += 500;
      if (r.closed) kicked++;
    }
  })();
  await Promise.all([logins, renewals]);
  const seconds = (performance.now() - started) / 1000;
  const rows = (await rowsSince(tb, from)).length;
  const grown = (await size()) - bytes0;
  const perHour = (grown / seconds) * 3600;
  const rowBytes = rows > 0 ? grown / rows : 0;
  const before = ((attempts + renewRequests) / seconds) * 3600 * (rowBytes || 150);
  t.comment(`${seconds.toFixed(0)} s: ${attempts} refused logins (${Math.round(attempts / seconds)}/s from ${FLOOD_ADDRESSES} addresses), ${renewRequests} renewal requests sent (${kicked} flooding sessions closed)`);
  t.comment(`audit rows written: ${rows} (${Math.round((rows / seconds) * 60)} a minute); registry grew ${(grown / 1024).toFixed(0)} KiB`);
  t.comment(`extrapolated to an hour of this flood: ${(perHour / 1048576).toFixed(1)} MiB (a row per attempt would be ≈ ${(before / 1048576).toFixed(0)} MiB)`);
  // The bound, per summary window: rowsPerWindow single rows + one summary per address and per device (+ one '*' row),
  // plus per closed session its abuse row, plus the connect refusals of the flooders.
  const windows = Math.ceil(seconds * 1000 / config.auditSummaryMs) + 1;
  const bound = windows * (config.auditRowsPerWindow + FLOOD_ADDRESSES + flooders.length + 2) + kicked * (config.renewBurst + 1);
  t.ok(rows <= bound, `audit rows bounded per window: ${rows} ≤ ${bound}`);
  t.ok(attempts > 0 && renewRequests > 0, 'both floods ran');
});
