// `credbroker sim --claim`: every simulated device starts unprovisioned, claims
// its credentials through the claim the sim created, then connects, publishes
// and renews (every cohort on top). The claim verdicts join the others. Tokens of
// 10 s: a loaded test host must not see a token expire between claim and CONNECT.
import t from 'tap';
import { runSimulation } from '../device-sim/index.js';
import { startTestBroker } from './helpers/broker.js';
import { everyInvariantPassed } from './helpers/sim-verdicts.js';

t.test('a claimed fleet: every invariant holds, the claim verdicts too', async (t) => {
  const tb = await startTestBroker({ leewaySec: 1, logLevel: 'warn' });
  t.teardown(() => tb.close());
  const report = await runSimulation({
    url: tb.url, db: tb.db, opsUrl: `http://127.0.0.1:${tb.broker.ports.http}`, claim: 'sim-lot', devices: 40, durationMs: 20_000, tokenTtlMs: 10_000,
    publishIntervalMs: 1_000, offlineFraction: 0.1, revokeFraction: 0.05, probeFraction: 0.05, nonRenewingFraction: 0.05, leewayMs: 1_000, seed: 11, progress: false,
  });
  everyInvariantPassed(t, report.invariants);
  t.ok(report.ok, 'report.ok');
  const claimVerdicts = report.invariants.filter((i) => ['claimed-devices-provisioned-once', 'no-claim-outside-rules', 'cloned-claim-cannot-take-id'].includes(i.id));
  t.same(claimVerdicts.map((i) => i.verdict), ['pass', 'pass', 'pass'], 'the three claim verdicts PASS');
  t.equal(report.settings.source, 'claimed');
  t.equal(report.counts.claimed, 40, 'each of the 40 devices claimed once');
  t.ok(report.counts.renewals > 0, `claimed devices renewed (${report.counts.renewals})`);
  t.ok(report.counts.observedMessages > 100, `their telemetry was delivered (${report.counts.observedMessages})`);
  t.equal((await tb.issuer.reg.claims.get('sim-lot')), undefined, 'the claim is gone after the run');
  t.equal((await tb.issuer.reg.devices.list({ prefix: 'sim-' })).length, 0, 'and so are its devices');
});

t.test('--claim refuses a name that exists, and --credentials', async (t) => {
  const tb = await startTestBroker({ logLevel: 'warn' });
  t.teardown(() => tb.close());
  const { createClaim } = await import('../operations/index.js');
  await createClaim(tb.issuer.reg, { name: 'taken', profile: 'sensor', brokerUrl: tb.url });
  await t.rejects(runSimulation({ url: tb.url, db: tb.db, claim: 'taken', devices: 2, durationMs: 1000, progress: false }), { code: 'ERR_CLAIM_EXISTS' });
  await t.rejects(runSimulation({ url: tb.url, db: tb.db, credentialsDir: tb.dir, claim: 'x', devices: 2, progress: false }), /exclude each other/);
});
