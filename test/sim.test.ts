import t from 'tap';
import { runSimulation } from '../device-sim/index.js';
import { startTestBroker } from './helpers/broker.js';

// A short run with every cohort against a real broker (leeway 1 s so that
// tokens of 5 s expire, and offline devices come back, within 12 s).
t.test('a short simulation against a real broker: every invariant holds', async (t) => {
  const tb = await startTestBroker({ leewaySec: 1, logLevel: 'warn' });
  t.teardown(() => tb.close());
  const report = await runSimulation({
    url: tb.url, db: tb.db, devices: 50, durationMs: 12_000, tokenTtlMs: 5_000, publishIntervalMs: 1_000,
    offlineFraction: 0.1, revokeFraction: 0.06, probeFraction: 0.06, nonRenewingFraction: 0.04,
    leewayMs: 1_000, seed: 7, progress: false,
  });
  for (const i of report.invariants) {
    t.not(i.verdict, 'fail', `${i.name}: ${i.detail}${i.examples.length ? ` — ${i.examples.join('; ')}` : ''}`);
  }
  t.ok(report.ok, 'report.ok');
  const skipped = report.invariants.filter((i) => i.verdict === 'skipped').map((i) => i.id);
  t.same(skipped, [], 'nothing skipped: every cohort was exercised');
  t.same(report.cohorts, { steady: 37, offline: 5, revoke: 3, probe: 3, nonRenewing: 2 }, 'seeded cohorts');
  t.ok(report.counts.renewals >= 37, `renewals happened (${report.counts.renewals})`);
  t.equal(report.latencyMs.revocationToKick.n, 3, 'three revocation latencies measured');
  t.ok(report.latencyMs.revocationToKick.max! < 1000, `kicked within a second (max ${report.latencyMs.revocationToKick.max} ms)`);
  t.ok(report.counts.observedMessages > 200, `observer saw the telemetry (${report.counts.observedMessages})`);
});
