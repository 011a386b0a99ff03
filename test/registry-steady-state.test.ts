// A steady fleet does not grow the registry without end (issue 11 #9): a
// simulated fleet renews short tokens against a real broker while the registry
// file is sampled; its size levels off once token records and renewal audit
// events are pruned as fast as they come. Scaled down for the normal suite
// (150 devices, 3-second tokens, 60 s); `npm run test:soak` runs the figure the
// issue measured: 1,000 devices, 10-second tokens, 10 minutes (76,792 renewals
// then left a 27 MB registry).
import t from 'tap';
import { startTestBroker } from './helpers/broker.js';
import { runCli } from './helpers/cli.js';
import { hasCli, SOAK } from './helpers/hostile-util.js';
import { everyInvariantPassed } from './helpers/sim-verdicts.js';
import type { InvariantResult } from '../device-sim/index.js';

const DEVICES = SOAK ? 1000 : 150;
const TOKEN_TTL_S = SOAK ? 10 : 3;
const DURATION_S = SOAK ? 600 : 60;
/** Renewal events are kept this long here (7 days by default), so that the audit log reaches its level within the run. */
const RENEWAL_AUDIT_S = SOAK ? 120 : 20;
const SAMPLE_MS = SOAK ? 10_000 : 3_000;

// The whole file's limit (.taprc's 300 s would end the soak run): the root test tells the runner.
t.setTimeout((DURATION_S + 300) * 1000);

const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
const max = (a: number[]) => Math.max(...a);

t.test(`${DEVICES} devices on ${TOKEN_TTL_S} s tokens for ${DURATION_S} s: the registry's size levels off`, { skip: !hasCli() && 'needs the built CLI (npm run build)', timeout: (DURATION_S + 300) * 1000 }, async (t) => {
  const tb = await startTestBroker({
    leewaySec: 1, maintenanceIntervalMs: SOAK ? 10_000 : 2_000, renewalAuditRetentionMs: RENEWAL_AUDIT_S * 1000,
    deviceConnectBurst: 10_000, deviceConnectPerSec: 1000, logLevel: 'info',
  });
  t.teardown(() => tb.close());
  const space = tb.issuer.reg.space;
  const samples: { s: number; file: number; wal: number }[] = [];
  const t0 = Date.now();
  const sampler = setInterval(async () => { const f = await space.fileSizes(); samples.push({ s: (Date.now() - t0) / 1000, file: f.fileBytes, wal: f.walBytes }); }, SAMPLE_MS);
  t.teardown(() => clearInterval(sampler));

  const sim = await runCli([
    'sim', '--url', tb.url, '--broker', `http://127.0.0.1:${tb.broker.ports.http}`, '--db', tb.db, '--devices', String(DEVICES), '--duration', `${DURATION_S}s`, '--token-ttl', `${TOKEN_TTL_S}s`,
    '--publish-interval', '30s', '--offline-fraction', '0', '--revoke-fraction', '0', '--probe-fraction', '0', '--non-renewing-fraction', '0',
    '--leeway', '1s', '--keep', '--json', // --keep: the fleet's records stay for the count below
  ], { timeoutMs: (DURATION_S + 240) * 1000 });
  clearInterval(sampler);
  t.equal(sim.code, 0, `the sim passed (exit 0) ${sim.stderr.slice(-300)}`);
  const report = JSON.parse(sim.stdout) as { counts: { renewals: number; renewRejected: number }; invariants: InvariantResult[] };
  // A steady fleet only: the cohorts set to 0 above are reported skipped.
  everyInvariantPassed(t, report.invariants, ['offline', 'revoke', 'probe', 'nonRenewing']);
  await tb.broker.maintenance.run();
  const end = await space.stats();

  const rows = (table: string) => end.rows[table] ?? 0;
  t.comment(`renewals ${report.counts.renewals} (rejected ${report.counts.renewRejected}); at the end: tokens ${rows('tokens')} rows, audit ${rows('audit')} rows, file ${kib(end.fileBytes)}, WAL ${kib(end.walBytes)}`);
  t.comment(`file size over time (s → KiB): ${samples.map((x) => `${x.s.toFixed(0)}→${(x.file / 1024).toFixed(0)}`).join(' ')}`);
  t.comment(`WAL over time (KiB): ${samples.map((x) => (x.wal / 1024).toFixed(0)).join(' ')}`);
  const unpruned = report.counts.renewals * 357;
  t.comment(`without pruning the same run would have added ≈ ${kib(unpruned)} (357 bytes a renewal, as measured before)`);

  t.ok(report.counts.renewals >= DEVICES * (DURATION_S / TOKEN_TTL_S) * 0.5, `the fleet renewed steadily (${report.counts.renewals})`);
  // A renewing device's family always has a live member, so its expired tokens are kept for the renewal audit
  // retention (revoke --token by an old jti must still reach the family); then they go. So: renewals in that
  // window (plus a token's life, the leeway and one maintenance interval), and nothing older.
  const keptS = RENEWAL_AUDIT_S + TOKEN_TTL_S + 1 + (SOAK ? 10 : 2);
  const tokenBound = Math.ceil((report.counts.renewals / DURATION_S) * keptS * 1.5) + DEVICES;
  t.ok(rows('tokens') <= tokenBound, `token records stay at the renewals of the last ${keptS} s: ${rows('tokens')} ≤ ${tokenBound}`);
  // The level: the last third of the run adds (almost) nothing over the middle third.
  const third = samples.length / 3;
  const middle = max(samples.slice(Math.floor(third), Math.floor(2 * third)).map((x) => x.file));
  const last = max(samples.slice(Math.floor(2 * third)).map((x) => x.file));
  t.ok(last <= middle * 1.1 + 128 * 1024, `the file levels off: last third max ${kib(last)} ≤ middle third max ${kib(middle)} + 10 % + 128 KiB`);
  t.ok(max(samples.map((x) => x.wal)) <= 16 * 1024 * 1024, 'the WAL stays bounded');
});
