import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Option, type Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import { EXIT_INTERRUPTED } from '../../errors/map.js';
import { DEFAULT_BROKER_URL, parseBrokerUrl } from '../../provisioning/broker-url.js';
import type { BatchRow } from '../../provisioning/batch-file.js';
import type { ProvisionResult } from '../../provisioning/provision.js';
import { addDbOption, deviceIdArgs, durationOption, examples, prepareOutDir, withIssuer } from '../common.js';
import { count, note, out, printJson, printTable, time } from '../output.js';

interface Opts {
  db: string; profile?: string; ttl?: string; credentialTtl?: string; out?: string; json?: boolean;
  batch?: string; skipInvalid?: boolean; brokerUrl: string;
}

/** Above this many devices the per-device table is left out (the summary line stays). */
const TABLE_LIMIT = 20;

export function registerProvision(program: Command): void {
  addDbOption(program.command('provision'))
    .description('register devices and issue their credentials (access token + refresh credential), one file per device')
    .argument('[ids...]', 'device ids: 1-128 characters of A-Z a-z 0-9 . _ : -')
    .option('--batch <file>', 'read the devices from a batch file: .csv (header row, column id, optional profile), .jsonl, or - for stdin')
    .option('--profile <name>', 'ACL profile (for a batch: the default for rows without a profile column)')
    .option('--out <dir>', 'write DIR/<deviceId>.json for each device (mode 0600)')
    .option('--json', 'print the credentials as a JSON array on stdout (they are secrets: handle with care)')
    .option('--ttl <duration>', 'access token lifetime (default: the profile\'s, at most 24h)')
    .option('--credential-ttl <duration>', 'refresh credential lifetime: how long the device may renew (default 365d)')
    .addOption(new Option('--broker-url <url>', 'broker address written into each credentials file').env('CREDBROKER_BROKER_URL').default(DEFAULT_BROKER_URL))
    .option('--skip-invalid', 'provision the valid rows of a batch and report the invalid ones (default: refuse the whole batch)')
    .addHelpText('after', examples(
      'credbroker provision pump-0001 --profile sensor --out ./creds',
      'credbroker provision --batch shift-42.csv --profile sensor --out /secure/creds --broker-url mqtts://broker.example.com:8883',
      'credbroker provision --batch devices.jsonl --profile sensor --out ./creds --skip-invalid',
      'generate-ids | credbroker provision --batch - --profile sensor --out ./creds',
      'credbroker provision test-1 --profile sensor --json > test-1.json',
    ) + `
Batch CSV:    id,profile            Batch JSONL:  {"id":"pump-0001"}
              pump-0001,sensor                    {"id":"gw-01","profile":"observer"}
              pump-0002,

Devices already in the registry are skipped (never issued a second set), so a batch
interrupted by a crash can simply be run again with the same --out folder.
Either --out or --json is required: the refresh credentials are shown only once.
`)
    .action(async (ids: string[], opts: Opts) => {
      if (ids.length && opts.batch) throw new UsageError('give device ids or --batch FILE, not both');
      if (!ids.length && !opts.batch) throw new UsageError('give one or more device ids, or --batch FILE');
      if (!opts.out && !opts.json) {
        throw new UsageError('refusing to provision without --out DIR or --json: the credentials are shown only once and would be lost');
      }
      if (!opts.batch && !opts.profile) throw new UsageError('--profile NAME is required (see: credbroker profile list)');
      const brokerUrl = parseBrokerUrl(opts.brokerUrl);
      const ttlMs = durationOption(opts.ttl, '--ttl');
      const credentialTtlMs = durationOption(opts.credentialTtl, '--credential-ttl');
      if (opts.batch === '-' && process.stdin.isTTY) throw new UsageError('--batch - reads the batch from standard input, which is a terminal: pipe or redirect the file in');
      const rows: BatchRow[] = opts.batch
        ? (await import('../../provisioning/batch-file.js')).readBatchFile(opts.batch)
        : deviceIdArgs(ids).map((id, k) => ({ line: k + 1, id }));

      const { provisionDevices } = await import('../../provisioning/provision.js');
      const { checkTtl } = await import('../../tokens/mint.js');
      const cliProgress = !opts.json && process.stderr.isTTY ? (await import('cli-progress')).default : undefined;
      await withIssuer(opts.db, async (issuer) => {
        if (opts.profile) await issuer.reg.profiles.require(opts.profile);
        if (ttlMs !== undefined) checkTtl(ttlMs, issuer.settings, `--ttl ${opts.ttl}`);
        if (opts.out) prepareOutDir(opts.out);
        const bar = cliProgress
          ? new cliProgress.SingleBar({
            stream: process.stderr, clearOnComplete: true, hideCursor: false,
            format: 'provisioning [{bar}] {percentage}% | {value}/{total} devices | ETA {eta_formatted}',
          }, cliProgress.Presets.shades_classic)
          : undefined;
        const started = performance.now();
        const stop = stopOnCtrlC(() => bar?.stop());
        let result: ProvisionResult;
        try {
          result = await provisionDevices(issuer, rows, {
            profile: opts.profile, outDir: opts.out, skipInvalid: opts.skipInvalid, brokerUrl, ttlMs, credentialTtlMs, signal: stop.signal,
            onProgress: bar && ((done, total) => {
              if (stop.signal.aborted) return; // the bar was cleared for the note
              if (done === 0) bar.start(total, 0);
              else bar.update(done);
            }),
          });
        } finally {
          stop.release();
          bar?.stop();
        }
        const seconds = (performance.now() - started) / 1000;
        report(result, seconds, opts);
        if (result.interrupted) {
          note(`credbroker: interrupted with ${count(result.remaining)} device(s) of the batch not provisioned; run the same command again to provision the rest (devices already provisioned are skipped)`);
          process.exitCode = EXIT_INTERRUPTED;
        }
      });
    });
}

/**
 * The first Ctrl-C asks the run to stop after the chunk it is writing (what is
 * committed keeps its files, and the summary is printed); a second one exits at
 * once, which a re-run also recovers from (see provisionDevices).
 */
function stopOnCtrlC(beforeNote: () => void): { signal: AbortSignal; release: () => void } {
  const ctl = new AbortController();
  const onSigint = () => {
    if (ctl.signal.aborted) process.exit(EXIT_INTERRUPTED);
    ctl.abort();
    beforeNote();
    note('credbroker: stopping after the devices being written (Ctrl-C again to stop at once; the batch can be resumed either way)');
  };
  process.on('SIGINT', onSigint);
  return { signal: ctl.signal, release: () => process.off('SIGINT', onSigint) };
}

const credentialsFilePath = (dir: string, id: string) => join(dir, `${id}.json`);

function report(r: ProvisionResult, seconds: number, opts: Opts): void {
  const say = opts.json ? note : out;
  if (opts.json) printJson(r.provisioned);
  else if (r.provisioned.length > 0 && r.provisioned.length <= TABLE_LIMIT) {
    printTable(
      opts.out ? ['DEVICE', 'TOKEN EXPIRES', 'CREDENTIAL EXPIRES', 'FILE'] : ['DEVICE', 'TOKEN EXPIRES', 'CREDENTIAL EXPIRES'],
      r.provisioned.map((c) => [
        c.deviceId, time(Date.parse(c.accessTokenExpiresAt)), time(Date.parse(c.refreshCredentialExpiresAt)),
        ...(opts.out ? [credentialsFilePath(opts.out, c.deviceId)] : []),
      ]),
    );
  }
  for (const p of r.invalid.slice(0, TABLE_LIMIT)) note(`invalid row skipped: line ${p.line}: ${p.message}`);
  if (r.invalid.length > TABLE_LIMIT) note(`... and ${count(r.invalid.length - TABLE_LIMIT)} more invalid rows`);
  if (r.skipped.length > 0 && r.skipped.length <= TABLE_LIMIT) note(`already provisioned, skipped: ${r.skipped.join(', ')}`);
  if (r.recovered.length > 0) {
    note(`recovered ${count(r.recovered.length)} credentials file(s) that an interrupted run had committed but not yet put in place`);
  }
  if (r.missingFiles.length > 0) {
    note(`warning: ${count(r.missingFiles.length)} already-provisioned device(s) have no credentials file in ${opts.out} `
      + `(e.g. ${r.missingFiles.slice(0, 3).join(', ')}): they were provisioned into another folder, or the file was lost`);
  }
  const rate = seconds > 0 ? r.provisioned.length / seconds : 0;
  say(`provisioned ${count(r.provisioned.length)}, skipped (already provisioned) ${count(r.skipped.length)}, invalid ${count(r.invalid.length)}`
    + ` in ${seconds.toFixed(2)} s (${count(Math.round(rate))} devices/s)`
    + (opts.out && r.provisioned.length ? `; credentials files in ${opts.out}` : ''));
}
