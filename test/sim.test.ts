import t from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { runSimulation } from '../device-sim/index.js';
import { provisionDevices, readCredentialsFile } from '../provisioning/index.js';
import { hashRefreshCredential, parseRefreshCredential } from '../tokens/index.js';
import { startTestBroker } from './helpers/broker.js';
import { everyInvariantPassed } from './helpers/sim-verdicts.js';

// A short run with every cohort against a real broker (leeway 1 s so that
// tokens of 5 s expire, and offline devices come back, within 12 s).
t.test('a short simulation against a real broker: every invariant holds', async (t) => {
  const tb = await startTestBroker({ leewaySec: 1, logLevel: 'warn' });
  t.teardown(() => tb.close());
  const report = await runSimulation({
    url: tb.url, db: tb.db, opsUrl: `http://127.0.0.1:${tb.broker.ports.http}`, devices: 50, durationMs: 12_000, tokenTtlMs: 5_000, publishIntervalMs: 1_000,
    offlineFraction: 0.1, revokeFraction: 0.06, probeFraction: 0.06, nonRenewingFraction: 0.04,
    leewayMs: 1_000, seed: 7, progress: false,
  });
  everyInvariantPassed(t, report.invariants); // every cohort is in this run: nothing may be skipped
  t.ok(report.ok, 'report.ok');
  t.same(report.cohorts, { steady: 37, offline: 5, revoke: 3, probe: 3, nonRenewing: 2 }, 'seeded cohorts');
  t.ok(report.counts.renewals >= 37, `renewals happened (${report.counts.renewals})`);
  t.equal(report.latencyMs.revocationToKick.n, 3, 'three revocation latencies measured');
  t.ok(report.latencyMs.revocationToKick.max! < 1000, `kicked within a second (max ${report.latencyMs.revocationToKick.max} ms)`);
  t.ok(report.counts.observedMessages > 200, `observer saw the telemetry (${report.counts.observedMessages})`);
});

// --credentials mode: a factory's folder of credentials files drives the fleet,
// and every credential that rotates during the run is written back, so the
// folder stays usable (a superseded refresh credential left there would get the
// device revoked as stolen on its next use).
t.test('--credentials DIR: the folder drives the fleet and holds the current credentials afterwards', async (t) => {
  const tb = await startTestBroker({ leewaySec: 1, logLevel: 'warn' });
  t.teardown(() => tb.close());
  const dir = join(tb.dir, 'creds');
  const ids = Array.from({ length: 10 }, (_, i) => `factory-${i}`);
  await provisionDevices(tb.issuer, ids.map((id, i) => ({ line: i + 2, id })), { profile: 'sensor', brokerUrl: tb.url, outDir: dir, ttlMs: 4_000 });
  const before = new Map(ids.map((id) => [id, readCredentialsFile(join(dir, `${id}.json`))]));

  const report = await runSimulation({
    url: tb.url, db: tb.db, opsUrl: `http://127.0.0.1:${tb.broker.ports.http}`, credentialsDir: dir, devices: 10, durationMs: 10_000, tokenTtlMs: 4_000, publishIntervalMs: 1_000,
    offlineFraction: 0.3, revokeFraction: 0, probeFraction: 0, nonRenewingFraction: 0, leewayMs: 1_000, seed: 3, progress: false,
  });
  everyInvariantPassed(t, report.invariants, ['revoke', 'probe', 'nonRenewing']);
  t.same(report.cohorts, { steady: 7, offline: 3, revoke: 0, probe: 0, nonRenewing: 0 }, 'the folder’s devices, in cohorts');

  let rotatedRefresh = 0;
  for (const id of ids) {
    const path = join(dir, `${id}.json`);
    const after = readCredentialsFile(path);
    t.equal(statSync(path).mode & 0o777, 0o600, `${id}: still 0600`);
    t.not(after.accessToken, before.get(id)!.accessToken, `${id}: the renewed token was written back`);
    t.equal(after.brokerUrl, before.get(id)!.brokerUrl, `${id}: the broker URL is kept`);
    const rec = (await tb.issuer.reg.refresh.find(hashRefreshCredential(parseRefreshCredential(after.refreshCredential))));
    t.ok(rec && rec.state !== 'superseded' && rec.state !== 'revoked', `${id}: the file's refresh credential is live (${rec?.state})`);
    if (after.refreshCredential !== before.get(id)!.refreshCredential) rotatedRefresh++;
  }
  t.ok(rotatedRefresh >= 3, `the offline devices' rotated refresh credentials were written back (${rotatedRefresh})`);
});
