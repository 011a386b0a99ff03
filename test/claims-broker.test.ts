// Provisioning by claim on the wire (SPEC "Provisioning by claim"): a real broker,
// real MQTT.js clients, a real SQLite registry. Every refusal with its code.
import t from 'tap';
import { brokerLogLines, closed, connect, connectDevice, startTestBroker, subscribeGranted, type TestBroker } from './helpers/broker.js';
import { claimOnce, claimSessionOpen } from './helpers/claim-client.js';
import { createClaim, revokeClaim } from '../operations/index.js';
import { sessionOf } from '../broker/session.js';

const ACCEPTED_FIELDS = ['accessToken', 'accessTokenExpiresAt', 'brokerUrl', 'deviceId', 'refreshCredential', 'refreshCredentialExpiresAt', 'requestId'];

async function withClaim(tb: TestBroker, name: string, rules: { maxDevices?: number; idPattern?: string; allowList?: string[]; ttlMs?: number; now?: number } = {}) {
  return (await createClaim(tb.issuer.reg, { name, profile: 'sensor', brokerUrl: tb.url, ...rules })).credential;
}

t.test('claims on the wire', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const credential = await withClaim(tb, 'line3', { maxDevices: 50, idPattern: 'pump-[0-9]{4}' });
  let quotaRejected = 0;

  t.test('a unit claims its id, then connects as itself, publishes and renews', async (t) => {
    const r = await claimOnce(tb.url, { id: 'pump-0001', claim: 'line3', credential });
    t.equal(r.code, 0, 'claim session accepted');
    t.equal(r.answer, 'accepted');
    t.same(Object.keys(r.body!).sort(), ACCEPTED_FIELDS, 'the credentials-file object plus the request id');
    t.match(r.body, { requestId: 'req-pump-0001', deviceId: 'pump-0001', brokerUrl: tb.url, refreshCredential: /^cbrt_/ });
    t.ok(r.closedAfterMs !== null && r.closedAfterMs < 8000, `the broker closed the claim session after its answer (${r.closedAfterMs} ms)`);
    t.equal((await tb.issuer.reg.devices.require('pump-0001')).profile, 'sensor');

    const dev = await connectDevice(tb.url, { deviceId: 'pump-0001', accessToken: r.body!.accessToken as string });
    t.equal(dev.code, 0, 'the device connects with the access token it received');
    t.teardown(() => dev.client?.end(true));
    await dev.client!.publishAsync('devices/pump-0001/telemetry', '{"t":1}', { qos: 1 });
    t.equal(await subscribeGranted(dev.client!, '$devices/pump-0001/token/+'), 1);
    const answer = new Promise<Record<string, unknown>>((res) => dev.client!.once('message', (_t, p) => res(JSON.parse(p.toString()) as Record<string, unknown>)));
    dev.client!.publish('$devices/pump-0001/token/renew', JSON.stringify({ requestId: 'r1' }), { qos: 1 });
    t.match(await answer, { requestId: 'r1', accessToken: /\./ }, 'renewed in-band');
  });

  t.test('CONNECT refusals: 4 for a bad credential, 5 for a revoked claim or an existing id, 2 for a bad id', async (t) => {
    const other = await withClaim(tb, 'other');
    const old = await withClaim(tb, 'old', { ttlMs: 1000, now: Date.now() - 10_000 });
    const gone = await withClaim(tb, 'gone');
    await revokeClaim(tb.issuer.reg, 'gone', 'test');
    await tb.provision(['pump-0900']);
    const cases: [string, { id: string; claim: string; credential: string }, number][] = [
      ['unknown claim', { id: 'pump-0002', claim: 'nope', credential }, 4],
      ['another claim\'s credential', { id: 'pump-0002', claim: 'line3', credential: other }, 4],
      ['malformed credential', { id: 'pump-0002', claim: 'line3', credential: `${credential.slice(0, -1)}x` }, 4],
      ['expired claim', { id: 'pump-0002', claim: 'old', credential: old }, 4],
      ['revoked claim', { id: 'pump-0002', claim: 'gone', credential: gone }, 5],
      ['client id that is already a device', { id: 'pump-0900', claim: 'line3', credential }, 5],
      ['client id that is not a device id', { id: 'pump/0002', claim: 'line3', credential }, 2],
      ['client id with a reserved prefix', { id: 'claim:x', claim: 'line3', credential }, 2],
    ];
    for (const [what, o, code] of cases) t.equal((await claimOnce(tb.url, o)).code, code, `${what}: CONNACK ${code}`);

    const asPassword = await connect(tb.url, { clientId: 'pump-0900', username: 'pump-0900', password: credential });
    t.equal(asPassword.code, 4, 'a claim credential as a device password: CONNACK 4');
  });

  t.test('a cloned claim cannot take over a connected device or a live claim session', async (t) => {
    const [dev] = await tb.provision(['pump-0950']);
    const live = await connectDevice(tb.url, dev!);
    t.equal(live.code, 0);
    t.teardown(() => live.client?.end(true));
    let kicked = false;
    live.client!.once('close', () => { kicked = true; });
    t.equal((await claimOnce(tb.url, { id: 'pump-0950', claim: 'line3', credential })).code, 5, 'CONNACK 5');
    // The sentinel: a round trip on the device's session after the claim was refused; a takeover would have closed it first.
    t.equal(await subscribeGranted(live.client!, 'devices/pump-0950/commands/#'), 1, 'the device\'s session still answers');
    t.notOk(kicked, 'the device session was not taken over');

    const first = await claimSessionOpen(tb.url, { id: 'pump-0951', claim: 'line3', credential });
    t.teardown(() => first.end(true));
    await new Promise((r) => setTimeout(r, 100));
    t.equal((await claimOnce(tb.url, { id: 'pump-0951', claim: 'line3', credential })).code, 5, 'a second claim session for the same id: CONNACK 5');
    // The sentinel: a round trip on the first session after the second was refused; a takeover would have closed it first.
    t.equal(await subscribeGranted(first, '$claims/pump-0951/provision/+'), 1, 'the first claim session still answers');
    t.ok(first.connected, 'the first claim session is still up');
  });

  t.test('rejections on the wire, each with its code', async (t) => {
    const listed = await withClaim(tb, 'listed', { allowList: ['gw-1', 'gw-2'] });
    const reject = async (o: { id: string; claim: string; credential: string; payload?: string }) => {
      const r = await claimOnce(tb.url, o);
      t.equal(r.code, 0, `${o.id}: CONNACK 0`);
      t.equal(r.answer, 'rejected', `${o.id}: rejected`);
      return r.body!;
    };
    t.match(await reject({ id: 'valve-1', claim: 'line3', credential }), { requestId: 'req-valve-1', code: 'id_not_allowed', message: /pattern/ }, 'outside the id pattern');
    t.match(await reject({ id: 'gw-3', claim: 'listed', credential: listed }), { code: 'id_not_allowed', message: /allow-list/ }, 'not on the allow-list');
    t.match(await reject({ id: 'pump-0003', claim: 'line3', credential, payload: 'not json' }), { requestId: null, code: 'bad_request' });
    t.equal((await tb.issuer.reg.devices.get('pump-0003')), undefined, 'nothing provisioned by a bad request');

    // The id becomes a device between CONNECT and the request: id_exists on the wire.
    const s = await claimSessionOpen(tb.url, { id: 'pump-0004', claim: 'line3', credential });
    await tb.provision(['pump-0004']);
    await s.subscribeAsync('$claims/pump-0004/provision/+');
    const got = new Promise<Record<string, unknown>>((res) => s.once('message', (_t, p) => res(JSON.parse(p.toString()) as Record<string, unknown>)));
    s.publish('$claims/pump-0004/provision', JSON.stringify({ requestId: 'x' }));
    t.match(await got, { requestId: 'x', code: 'id_exists' }, 'became a device after CONNECT');
    s.end(true);

    // Revoked between CONNECT and the request.
    const late = await withClaim(tb, 'late');
    const s2 = await claimSessionOpen(tb.url, { id: 'late-1', claim: 'late', credential: late });
    await revokeClaim(tb.issuer.reg, 'late', 'test');
    await s2.subscribeAsync('$claims/late-1/provision/+');
    const got2 = new Promise<Record<string, unknown>>((res) => s2.once('message', (_t, p) => res(JSON.parse(p.toString()) as Record<string, unknown>)));
    s2.publish('$claims/late-1/provision', JSON.stringify({ requestId: 'y' }));
    t.match(await got2, { code: 'claim_revoked' }, 'revoked after CONNECT');
    s2.end(true);
  });

  t.test('20 devices claiming at once against a quota of 10: exactly 10', async (t) => {
    const c = await withClaim(tb, 'race', { maxDevices: 10 });
    const ids = Array.from({ length: 20 }, (_, i) => `race-${String(i).padStart(2, '0')}`);
    const outcomes = await Promise.all(ids.map((id) => claimOnce(tb.url, { id, claim: 'race', credential: c })));
    const accepted = outcomes.filter((o) => o.answer === 'accepted');
    t.equal(accepted.length, 10, 'exactly 10 accepted');
    // The quota is checked at CONNECT too: a unit that connects once it is used up is refused there.
    const late = outcomes.filter((o) => o.answer !== 'accepted');
    t.ok(late.every((o) => (o.code === 0 && o.answer === 'rejected' && o.body!.code === 'quota_exhausted') || (o.code === 5 && o.answer === null)),
      'the other 10: quota_exhausted, or CONNACK 5 when the quota was used up at their CONNECT');
    quotaRejected = late.filter((o) => o.answer === 'rejected').length;
    t.equal((await tb.issuer.reg.devices.existing(ids)).size, 10, 'exactly 10 devices in the registry');
    t.equal(await tb.issuer.reg.claims.used('race'), 10);
  });

  t.test('a claim session may use its own claim topics and nothing else', async (t) => {
    const s = await claimSessionOpen(tb.url, { id: 'pump-0005', claim: 'line3', credential });
    t.teardown(() => s.end(true));
    // The broker registers the session just after the CONNACK.
    for (let i = 0; i < 50 && !tb.broker.context.sessions.clientOf('pump-0005'); i++) await new Promise((r) => setTimeout(r, 20));
    const session = sessionOf(tb.broker.context.sessions.clientOf('pump-0005'));
    t.equal(session?.kind, 'claim');
    const leeway = tb.broker.context.config.leewaySec * 1000;
    t.equal(session!.expiresAt + leeway - session!.connectedAt, 60_000, 'closed 60 s after CONNECT at the latest');
    for (const f of ['#', '$claims/#', '$claims/+/provision/+', '$claims/pump-0006/provision/+', '$devices/pump-0005/token/+', 'devices/pump-0005/commands/#']) {
      t.equal(await subscribeGranted(s, f), 128, `SUBSCRIBE ${f}: 0x80`);
    }
    t.equal(await subscribeGranted(s, '$claims/pump-0005/provision/+'), 1, 'its own answer topics: granted');
    for (const topic of ['devices/pump-0005/telemetry', '$claims/pump-0006/provision', '$devices/pump-0005/token/renew']) {
      const c = await claimSessionOpen(tb.url, { id: `pump-07${topic.length}`, claim: 'line3', credential });
      const end = closed(c);
      c.publish(topic.replace('pump-0005', `pump-07${topic.length}`), '{"requestId":"z"}', { qos: 0 });
      t.ok(await Promise.race([end.then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]), `PUBLISH ${topic}: connection closed`);
      c.end(true);
    }
  });

  t.test('audited and counted, never the secret', async (t) => {
    tb.broker.context.audit.flush();
    const rows = (await tb.issuer.reg.audit.query({ limit: null }));
    t.ok(rows.some((e) => e.action === 'device.provision' && e.actor === 'broker' && (e.details as { claim?: string })?.claim === 'line3'), 'device.provision by the broker, with the claim');
    t.ok(rows.some((e) => e.action === 'claim.rejected' && (e.details as { code?: string })?.code === 'id_not_allowed'), 'claim.rejected with its code');
    t.ok(rows.some((e) => e.action === 'auth.refused' && (e.details as { claim?: string })?.claim === 'nope'), 'refused claim CONNECTs with the claim name');
    t.notMatch(JSON.stringify(rows), /cbcl_/, 'no claim credential in the audit log');
    t.notMatch(brokerLogLines.join('\n'), /cbcl_/, 'no claim credential in the broker log');
    const metrics = await tb.broker.context.metrics.registry.metrics();
    t.match(metrics, /credbroker_claims_total\{result="accepted",reason="provisioned"\} \d+/);
    const quota = /credbroker_claims_total\{result="rejected",reason="quota_exhausted"\} (\d+)/.exec(metrics);
    t.equal(Number(quota?.[1] ?? 0), quotaRejected, 'every quota_exhausted answer counted');
  });
});

t.test('claims are rate-limited per address', async (t) => {
  const tb = await startTestBroker({ claimAddressBurst: 2, claimAddressPerSec: 0.01 });
  t.teardown(() => tb.close());
  const credential = await withClaim(tb, 'slow');
  const codes: (string | undefined)[] = [];
  for (const id of ['s-1', 's-2', 's-3']) codes.push((await claimOnce(tb.url, { id, claim: 'slow', credential })).body?.code as string | undefined);
  t.same(codes, [undefined, undefined, 'rate_limited'], 'the third claim from one address: rate_limited');
  t.equal((await tb.issuer.reg.devices.get('s-3')), undefined);
});

t.test('claims are rate-limited per claim', async (t) => {
  const tb = await startTestBroker({ claimBurst: 1, claimPerSec: 0.01 });
  t.teardown(() => tb.close());
  const credential = await withClaim(tb, 'slow');
  const second = await withClaim(tb, 'other');
  t.equal((await claimOnce(tb.url, { id: 'a-1', claim: 'slow', credential })).answer, 'accepted');
  t.match((await claimOnce(tb.url, { id: 'a-2', claim: 'slow', credential })).body, { code: 'rate_limited', message: /through this claim/ });
  t.equal((await claimOnce(tb.url, { id: 'a-3', claim: 'other', credential: second })).answer, 'accepted', 'another claim is not held back');
});
