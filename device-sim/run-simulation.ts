import { cleanUpFleet } from './cleanup.js';
import { prepareFleet } from './fleet.js';
import { brokerUrls, resolveSimOptions, type SimOptions } from './options.js';
import { checkBrokerListening, checkSameRegistry, defaultOpsUrl, type RegistryCheck } from './preflight.js';
import { createProgress } from './progress.js';
import type { SimReport } from './report.js';
import { Simulation } from './run.js';

/**
 * Runs a whole simulation: checks that the broker is listening and shares the
 * sim's registry (before provisioning anything), prepares the fleet
 * (provisioning, or credentials files), plays the scenario, and removes the
 * devices it provisioned unless `keep`. Returns the report with a verdict per
 * invariant; it never exits the process.
 *
 * @param stop ends the scenario early (Ctrl-C): teardown, report and clean-up still run
 * @throws CredbrokerError `ERR_BROKER_UNREACHABLE` | `ERR_REGISTRY_MISMATCH` before anything is written
 * @example
 * const report = await runSimulation({ url: 'mqtt://127.0.0.1:1883', db: './data/credbroker.db', devices: 200, durationMs: 60_000 });
 * if (!report.ok) process.exitCode = 1;
 */
export async function runSimulation(input: Partial<SimOptions>, stop?: AbortSignal): Promise<SimReport> {
  const opts = resolveSimOptions(input);
  const started = Date.now();
  const urls = brokerUrls(opts.url);
  for (const url of urls) await checkBrokerListening(url);
  let check: RegistryCheck = { result: 'unchecked', detail: 'no registry (--db): nothing to compare' };
  const fleet = await prepareFleet(opts, undefined, async (issuer) => {
    const ops = opts.opsUrl ?? defaultOpsUrl(urls[0]!);
    check = ops === null
      ? { result: 'unchecked', detail: 'the broker is not on the default MQTT port: give --broker its ops HTTP address to check that it uses this registry' }
      : await checkSameRegistry(ops, issuer.keyring, opts.db!, opts.opsUrl === null);
  });
  const progress = createProgress(opts.progress, opts.json);
  const provisionedProfile = !opts.credentialsDir;
  try {
    const report = await new Simulation(opts, fleet, progress, stop).run(started);
    progress.stop();
    const cleanup = await cleanUpFleet(fleet, opts.keep, provisionedProfile);
    return { ...report, registry: { check, cleanup }, interrupted: stop?.aborted ?? false };
  } catch (err) {
    try {
      await cleanUpFleet(fleet, opts.keep, provisionedProfile); // a failed run leaves nothing behind either
    } catch {
      // the run's own error is the one to report
    }
    throw err;
  } finally {
    progress.stop();
    await fleet.close();
  }
}
