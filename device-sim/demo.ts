/**
 * `npm run demo`: a broker on embedded defaults (temporary registry, ephemeral
 * loopback ports), a 30-second simulation against it, the report, and a clean
 * shutdown. Exit code 0 when every invariant held.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, startBroker, validateConfig } from '../broker/index.js';
import { formatReport } from './report.js';
import { runSimulation } from './run-simulation.js';

async function demo(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-demo-'));
  const db = join(dir, 'registry.db');
  const config = validateConfig({ db, host: '127.0.0.1', mqttPort: 0, wsPort: null, httpPort: 0 });
  const broker = await startBroker(config, { logger: createLogger('error') });
  const url = `mqtt://127.0.0.1:${broker.ports.mqtt}`;
  process.stderr.write(`demo: broker on ${url} (embedded defaults: leeway ${config.leewaySec} s, denied publish "${config.deniedPublish}"), registry ${db}\n`);
  process.stderr.write('demo: 200 devices, 10 s tokens, 30 s scenario: renewals, offline devices, revocations, ACL probes, non-renewing devices\n');
  try {
    const report = await runSimulation({
      url, db, opsUrl: `http://127.0.0.1:${broker.ports.http}`, devices: 200, durationMs: 30_000, tokenTtlMs: 10_000, publishIntervalMs: 2_000,
      leewayMs: config.leewaySec * 1000, deniedPublish: config.deniedPublish, seed: 2024,
    });
    process.stdout.write(formatReport(report));
    return report.ok ? 0 : 1;
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

demo().then((code) => {
  process.exitCode = code;
}, (err: unknown) => {
  process.stderr.write(`demo: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
