import type { Command } from 'commander';
import type { SimFlags } from '../../device-sim/index.js';
import { EXIT_INTERRUPTED } from '../../errors/map.js';
import { DEFAULT_DB, examples, requireExistingRegistry } from '../common.js';
import { note } from '../output.js';

/**
 * `credbroker sim`: a fleet of simulated devices against a running broker; a
 * thin shell over `runSimulation` (device-sim/). Prints the report (a table, or
 * JSON with --json) and exits 1 when any invariant failed.
 */
export function registerSim(program: Command): void {
  program
    .command('sim')
    .description('simulate a device fleet against a running broker and check every invariant (renewal, ACLs, offline recovery, revocation)')
    .option('--url <url>', 'broker URL, or several separated by commas (the nodes of a cluster): the fleet is spread over them', 'mqtt://127.0.0.1:1883')
    .option('--db <file>', `registry shared with the broker (a file, or postgres://USER@HOST:PORT/DB): the sim provisions its devices and an observer there and revokes through it (env CREDBROKER_DB; default ${DEFAULT_DB} unless --credentials is given)`)
    .option('--credentials <dir>', 'use a folder of credentials files (<deviceId>.json) instead of provisioning; rotated credentials are written back')
    .option('--claim <name>', 'provisioning by claim: create a simulation claim of this name for the run\'s ids; every device starts unprovisioned and claims its credentials first (needs --db)')
    .option('--devices <n>', 'number of devices', '100')
    .option('--duration <d>', 'scenario length, after the connect wave', '60s')
    .option('--token-ttl <d>', 'access-token lifetime of the sim-sensor profile', '30s')
    .option('--publish-interval <d>', 'telemetry interval per device', '5s')
    .option('--offline-fraction <f>', 'devices that go offline past their token expiry and come back through their refresh credential', '0.1')
    .option('--revoke-fraction <f>', 'devices revoked mid-run through the registry (needs --db)', '0.05')
    .option('--probe-fraction <f>', 'devices that try forbidden subscribes, a forbidden publish and a client-id takeover', '0.05')
    .option('--non-renewing-fraction <f>', 'devices that never renew: the broker must close them at expiry + leeway (at least 1 when > 0)', '0.01')
    .option('--leeway <d>', "the broker's clock leeway (its leewaySec)", '5s')
    .option('--denied-publish <policy>', "the broker's policy for a refused publish: disconnect | drop", 'disconnect')
    .option('--connect-concurrency <n>', 'CONNECTs in flight during the connect wave', '100')
    .option('--seed <n>', 'seed of every random choice (cohorts, timings); printed in the report')
    .option('--revoked-retries <n>', 'reconnect attempts of each revoked device after its kick, token then refresh credential (each must be refused)', '2')
    .option('--failed-auth-burst <n>', 'pacing of deliberate failed logins from this host (keep below the broker authFailBurst)', '10')
    .option('--failed-auth-per-sec <r>', 'refill rate of that pacing (keep below the broker authFailPerSec)', '1')
    .option('--id-prefix <p>', 'device id prefix (a run tag is appended)', 'sim')
    .option('--broker <url>', "the broker's ops HTTP address: before provisioning, the sim checks there that the broker trusts this registry's signing key (default: http://<--url host>:9100 when --url is on port 1883; skipped when it does not answer)")
    .option('--keep', 'leave the simulation devices, the observer and the sim-sensor profile in the registry after the run')
    .option('--no-progress', 'no live progress line (it is only shown on a TTY anyway)')
    .option('--json', 'print the report as JSON on stdout')
    .addHelpText('after', examples(
      'credbroker sim                                          # 100 devices, 60 s, against mqtt://127.0.0.1:1883 and ./data/credbroker.db',
      'credbroker sim --devices 1000 --token-ttl 20s --duration 90s',
      'credbroker sim --devices 5000 --connect-concurrency 200 --json > report.json',
      'credbroker sim --credentials ./out --db ./data/credbroker.db --revoke-fraction 0',
      'credbroker sim --seed 42 --offline-fraction 0.2 --probe-fraction 0.1',
      'credbroker sim --claim sim-lot --devices 500                    # every device claims its credentials first',
    ) + `
The sim runs on the broker's host (or shares its registry file): it provisions its own devices
(ids sim-<runtag>-<n>, profile sim-sensor = the sensor ACL with --token-ttl) and an observer
(profile observer), marked as simulation devices, and revokes devices through the registry, as
"credbroker revoke" would. When the run ends (also on Ctrl-C) it removes them all and the
sim-sensor profile, unless --keep. Before provisioning it checks that a broker listens at --url
(exit 8: "cannot connect to mqtt://...: ECONNREFUSED") and that the broker's JWKS holds this
registry's signing key (exit 2: "the broker and the sim use different registries").
With --claim NAME the sim creates claim NAME (quota = --devices, id pattern = the run's ids;
removed at the end with its devices) and every device claims before it connects; the report adds
"every claimed device provisioned exactly once", "no claim over quota or outside the pattern/
allow-list succeeded" and "a cloned claim could not take an existing id".
Exit code 0 when every invariant held, 1 when any failed, 130 when stopped by Ctrl-C.
All sim devices connect from one address: the broker's per-address failed-login throttle
(authFailBurst/authFailPerSec) would refuse every CONNECT from it once tripped, so the sim paces
its deliberate failures (--failed-auth-burst/--failed-auth-per-sec) and reports those it skipped.
`)
    .action(async (flags: SimFlags & { progress?: boolean }) => {
      // Loaded here, not at start-up: every other command stays fast to start.
      const { formatReport, parseSimFlags, runSimulation } = await import('../../device-sim/index.js');
      const opts = parseSimFlags(flags, process.env, DEFAULT_DB);
      if (opts.db) requireExistingRegistry(opts.db);
      const stop = new AbortController();
      const onSigint = () => {
        if (stop.signal.aborted) process.exit(EXIT_INTERRUPTED); // the second Ctrl-C: at once, devices left behind
        stop.abort();
        note('credbroker: stopping the simulation and removing its devices (Ctrl-C again to quit at once and leave them)');
      };
      process.on('SIGINT', onSigint);
      let report;
      try {
        report = await runSimulation(opts, stop.signal);
      } finally {
        process.off('SIGINT', onSigint);
      }
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
      if (report.interrupted) process.exitCode = EXIT_INTERRUPTED;
      else if (!report.ok) process.exitCode = 1;
    });
}
