import t from 'tap';
import type { Weakening } from '../broker/index.js';
import { runSimulation, type InvariantId, type SimReport } from '../device-sim/index.js';
import { startTestBroker } from './helpers/broker.js';

// Each deliberately weakened broker must make the sim fail, naming the
// invariant the weakening breaks (and nothing unrelated). The four runs go one
// after another, each against its own broker: in parallel on 2 cores, renewals and
// kicks get late enough to fail unrelated invariants.
const CASES: [keyof Weakening, InvariantId[], InvariantId[]][] = [
  // weakening, must fail, may also fail (a consequence of the same hole)
  ['skipSubscribeCheck', ['forbidden-subscribe-refused'], []],
  ['skipPublishCheck', ['no-forbidden-publish-delivered', 'forbidden-publish-disconnects'], []],
  ['neverExpireSessions', ['no-session-past-expiry'], []],
  ['ignoreRevocations', ['revoked-devices-kicked'], []],
];

async function weakenedRun(weakening: keyof Weakening): Promise<SimReport> {
  const tb = await startTestBroker({ leewaySec: 1, logLevel: 'warn' }, { weaken: { [weakening]: true } });
  try {
    return await runSimulation({
      url: tb.url, db: tb.db, opsUrl: `http://127.0.0.1:${tb.broker.ports.http}`, devices: 30, durationMs: 10_000, tokenTtlMs: 5_000, publishIntervalMs: 1_000,
      offlineFraction: 0, revokeFraction: 0.1, probeFraction: 0.1, nonRenewingFraction: 0.07,
      leewayMs: 1_000, seed: 11, progress: false,
    });
  } finally {
    await tb.close();
  }
}

t.test('every weakening is caught by its invariant', async (t) => {
  const reports: SimReport[] = [];
  for (const [w] of CASES) reports.push(await weakenedRun(w));
  CASES.forEach(([weakening, mustFail, mayFail], i) => {
    const report = reports[i]!;
    const failed = report.invariants.filter((x) => x.verdict === 'fail').map((x) => x.id);
    t.equal(report.ok, false, `${weakening}: the sim fails`);
    for (const id of mustFail) {
      const inv = report.invariants.find((x) => x.id === id)!;
      t.equal(inv.verdict, 'fail', `${weakening}: "${inv.name}" fails — ${inv.detail}; ${inv.examples[0] ?? ''}`);
    }
    const unrelated = failed.filter((id) => !mustFail.includes(id) && !mayFail.includes(id));
    const why = report.invariants.filter((x) => unrelated.includes(x.id)).map((x) => `${x.id}: ${x.detail}; ${x.examples.join('; ')}`).join(' | ');
    t.same(unrelated, [], `${weakening}: no unrelated invariant fails${why ? ` — ${why}` : ''}`);
  });
});
