// Claim sessions at CONNECT, in one process (SPEC "Provisioning by claim", issue #19
// finding 4): clean only; an exhausted, expired or revoked claim refused; accepted
// claim CONNECTs rate-limited. A real broker, real MQTT.js and raw sockets, a real
// SQLite registry. One session per id across workers and nodes: claims-cluster.test.ts.
import t from 'tap';
import { brokerLogLines, connect, startTestBroker, type TestBroker } from './helpers/broker.js';
import { claimOnce, rawClaimAttempt } from './helpers/claim-client.js';
import { createClaim, revokeClaim } from '../operations/index.js';

async function withClaim(tb: TestBroker, name: string, rules: { maxDevices?: number; ttlMs?: number; now?: number } = {}) {
  return (await createClaim(tb.issuer.reg, { name, profile: 'sensor', brokerUrl: tb.url, ...rules })).credential;
}

const refusedFor = (id: string) => brokerLogLines.map((l) => JSON.parse(l) as Record<string, unknown>)
  .filter((r) => r.event === 'auth.refused' && r.device === id).map((r) => r.reason);

t.test('claim sessions are clean only: clean=0 gets CONNACK 5', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const credential = await withClaim(tb, 'line');
  const raw = await rawClaimAttempt(tb.broker.ports.mqtt!, { id: 'dirty-1', claim: 'line', credential, clean: false });
  t.equal(raw.code, 5, 'raw CONNECT with clean=0: CONNACK 5');
  t.ok(raw.closed, 'and closed');
  const viaMqttJs = await connect(tb.url, { clientId: 'dirty-2', username: 'claim:line', password: credential, clean: false });
  t.equal(viaMqttJs.code, 5, 'MQTT.js with clean: false: CONNACK 5');
  t.same(refusedFor('dirty-1'), ['claim_not_clean'], 'logged as claim_not_clean');
  t.equal((await claimOnce(tb.url, { id: 'dirty-1', claim: 'line', credential })).answer, 'accepted', 'the same unit with clean=1 is provisioned');
});

t.test('an exhausted, expired or revoked claim is refused at CONNECT', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const full = await withClaim(tb, 'full', { maxDevices: 1 });
  t.equal((await claimOnce(tb.url, { id: 'full-1', claim: 'full', credential: full })).answer, 'accepted', 'the quota\'s one device');
  const old = await withClaim(tb, 'old', { ttlMs: 1000, now: Date.now() - 10_000 });
  const gone = await withClaim(tb, 'gone');
  await revokeClaim(tb.issuer.reg, 'gone', 'test');
  const port = tb.broker.ports.mqtt!;
  const exhausted = await rawClaimAttempt(port, { id: 'full-2', claim: 'full', credential: full });
  t.equal(exhausted.code, 5, 'exhausted: CONNACK 5');
  t.same(exhausted.published, [], 'no answer: the session never existed');
  t.equal((await rawClaimAttempt(port, { id: 'old-1', claim: 'old', credential: old })).code, 4, 'expired: CONNACK 4');
  t.equal((await rawClaimAttempt(port, { id: 'gone-1', claim: 'gone', credential: gone })).code, 5, 'revoked: CONNACK 5');
  t.same(refusedFor('full-2'), ['claim_exhausted'], 'logged as claim_exhausted');
  t.notMatch(brokerLogLines.join('\n'), /cbcl_/, 'no claim credential in the log');
});

t.test('accepted claim CONNECTs are rate-limited per address and per claim: held sessions are bounded', async (t) => {
  t.test('per address', async (t) => {
    const tb = await startTestBroker({ claimConnectAddressBurst: 3, claimConnectAddressPerSec: 0.01 });
    t.teardown(() => tb.close());
    const credential = await withClaim(tb, 'line');
    const port = tb.broker.ports.mqtt!;
    const ids = Array.from({ length: 20 }, (_, i) => `held-${String(i).padStart(2, '0')}`);
    // One after another, each kept open: the flood of held sessions from the issue, in small.
    const outcomes = [];
    for (const id of ids) outcomes.push(rawClaimAttempt(port, { id, claim: 'line', credential, holdMs: 2000 }));
    const codes = (await Promise.all(outcomes)).map((o) => o.code);
    t.equal(codes.filter((c) => c === 0).length, 3, 'the burst of 3 accepted');
    t.equal(codes.filter((c) => c === 3).length, 17, 'the rest: CONNACK 3 (a unit tries again later)');
    t.ok(ids.some((id) => refusedFor(id).includes('claim_connect_rate')), 'logged as claim_connect_rate');
    await tb.broker.context.audit.flush();
    const rows = await tb.issuer.reg.audit.query({ limit: null });
    t.equal(rows.filter((r) => r.action === 'auth.refused' && (r.details as { reason?: string } | null)?.reason === 'claim_connect_rate').length, 0,
      'no audit row per refused attempt (counted into the summary)');
  });

  t.test('per claim', async (t) => {
    const tb = await startTestBroker({ claimConnectBurst: 2, claimConnectPerSec: 0.01 });
    t.teardown(() => tb.close());
    const slow = await withClaim(tb, 'slow');
    const other = await withClaim(tb, 'other');
    const port = tb.broker.ports.mqtt!;
    const codes = await Promise.all(['c-1', 'c-2', 'c-3'].map((id) => rawClaimAttempt(port, { id, claim: 'slow', credential: slow, holdMs: 1500 })));
    t.same(codes.map((o) => o.code).sort(), [0, 0, 3], 'the third through one claim: CONNACK 3');
    t.equal((await claimOnce(tb.url, { id: 'c-4', claim: 'other', credential: other })).answer, 'accepted', 'another claim is not held back');
  });
});
