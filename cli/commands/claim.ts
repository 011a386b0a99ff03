import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import { DEFAULT_BROKER_URL, parseBrokerUrl } from '../../provisioning/broker-url.js';
import { formatDuration } from '../../util/duration.js';
import { durationOption, examples, subcommand, withRegistry } from '../common.js';
import { claimJson } from '../../operations/json-views.js';
import { count, iso, note, out, printJson, printTable, time } from '../output.js';

interface CreateOpts {
  db: string; profile?: string; maxDevices?: string; ttl?: string; idPattern?: string; allowList?: string; out?: string; json?: boolean; brokerUrl: string;
}
interface Opts { db: string; json?: boolean; reason?: string; ttl?: string; limit?: string }


/** What gets flashed onto every unit of the batch (`--out FILE`): the device client reads it as `claimPath`. */
function claimFileText(name: string, credential: string, brokerUrl: string): string {
  return `${JSON.stringify({ claim: name, claimCredential: credential, brokerUrl }, null, 2)}\n`;
}

/**
 * Reserves `--out` (created empty, mode 0600, never over an existing file: a
 * second claim's credential would replace the first) before the claim is
 * created, so that a path that cannot be written refuses the command instead
 * of leaving a claim whose credential nobody holds.
 */
function reserveClaimFile(path: string): { write(text: string): void; abandon(): void } {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'EEXIST' ? `--out ${path} exists already: give a new file (a claim file is never overwritten)` : `cannot write --out ${path}: ${code ?? (err as Error).message}`);
  }
  return {
    write(text) {
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
    },
    abandon() {
      closeSync(fd);
      rmSync(path, { force: true });
    },
  };
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`invalid ${flag} "${value.slice(0, 40)}": expected a whole number ≥ 1`);
  return n;
}

function checkReason(text: string | undefined): string {
  const reason = (text ?? 'revoked by operator').trim();
  if (!reason || reason.length > 500 || /[\x00-\x1f\x7f]/.test(reason)) throw new UsageError('--reason must be one line of 1-500 characters');
  return reason;
}

export function registerClaim(program: Command): void {
  const claim = program.command('claim')
    .description('provisioning by claim: one shared, limited claim credential per production batch; each unit claims its own credentials once, over MQTT')
    .addHelpText('after', examples(
      'credbroker claim create line3-2026w14 --profile sensor --max-devices 5000 --id-pattern "pump-[0-9]{6}" --out line3.claim.json',
      'credbroker claim list',
      'credbroker claim show line3-2026w14',
      'credbroker claim revoke line3-2026w14 --reason "claim file leaked"',
    ));

  subcommand(claim, 'create <name>', 'create a claim and print (or write with --out) its claim credential, shown this once')
    .requiredOption('--profile <name>', 'ACL profile of the devices provisioned through the claim')
    .option('--max-devices <n>', `quota: devices the claim may provision in all (default: the allow-list's size, else 1000)`)
    .option('--ttl <duration>', 'how long the claim accepts claims (default 90d)')
    .option('--id-pattern <regex>', 'a claimed device id must match this regular expression whole (it is anchored; runs in linear time: no backreferences or lookaround)')
    .option('--allow-list <file>', 'only the device ids in this file (one per line) may be claimed')
    .option('--out <file>', 'write the claim file (claim name, claim credential, broker URL; mode 0600) to flash onto every unit, instead of printing the credential')
    .addOption(new Option('--broker-url <url>', 'broker address written into the claim file and into each claimed credentials set').env('CREDBROKER_BROKER_URL').default(DEFAULT_BROKER_URL))
    .option('--json', 'print the claim as JSON (with the credential unless --out)')
    .addHelpText('after', examples(
      'credbroker claim create line3-2026w14 --profile sensor --max-devices 5000 --out line3.claim.json',
      'credbroker claim create lot-88 --profile sensor --allow-list lot-88-serials.txt --ttl 30d --out lot-88.claim.json',
      'credbroker claim create lab --profile sensor --max-devices 10 --id-pattern "lab-[a-z0-9]+" --json',
    ) + `
The claim credential (cbcl_...) is shown once and stored only as a hash. Every unit of the batch
carries it; on first boot a unit connects with client id = its own device id, user name
claim:<NAME> and the credential as password, and receives its own credentials set (SPEC
"Provisioning by claim"). See provisioning.md, "Provisioning by claim".
`)
    .action(async (name: string, opts: CreateOpts) => {
      const ttlMs = durationOption(opts.ttl, '--ttl');
      const maxDevices = positiveInt(opts.maxDevices, '--max-devices');
      const brokerUrl = parseBrokerUrl(opts.brokerUrl);
      const { readAllowListFile } = await import('../../provisioning/allow-list-file.js');
      const allowList = opts.allowList === undefined ? undefined : readAllowListFile(opts.allowList);
      const { createClaim, claimSummary } = await import('../../operations/claim.js');
      const r = await withRegistry(opts.db, async (reg) => {
        const file = opts.out ? reserveClaimFile(opts.out) : null;
        let made;
        try {
          made = await createClaim(reg, { name, profile: opts.profile!, brokerUrl, maxDevices, ttlMs, idPattern: opts.idPattern, allowList });
        } catch (err) {
          file?.abandon();
          throw err;
        }
        file?.write(claimFileText(made.claim.name, made.credential, made.claim.brokerUrl));
        return { summary: await claimSummary(reg, made.claim, 0), credential: made.credential };
      });
      const c = r.summary.claim;
      if (opts.json) {
        printJson({ ...claimJson(r.summary), ...(opts.out ? { file: opts.out } : { claimCredential: r.credential }) });
        return;
      }
      out(`created claim ${c.name}: profile ${c.profile}, quota ${count(c.maxDevices)} device(s), expires ${time(c.expiresAt)}`
        + `${c.idPattern ? `, id pattern ${c.idPattern}` : ''}${r.summary.allowListSize !== null ? `, allow-list of ${count(r.summary.allowListSize)} id(s)` : ''}`);
      if (opts.out) out(`claim file (claim name, credential, broker URL) written to ${opts.out} (mode 0600): flash it onto every unit of the batch`);
      else {
        out(`claim credential (shown once, store it like a password): ${r.credential}`);
        note('devices connect with user name claim:' + c.name + ' and this credential as password (see provisioning.md)');
      }
    });

  subcommand(claim, 'list', 'list claims with their state, quota used and expiry')
    .option('--json', 'print the claims as a JSON array')
    .action(async (opts: Opts) => {
      const { listClaims } = await import('../../operations/claim.js');
      const list = await withRegistry(opts.db, (reg) => listClaims(reg), { readonly: true });
      if (opts.json) {
        printJson(list.map(claimJson));
        return;
      }
      printTable(
        ['NAME', 'PROFILE', 'STATE', 'USED', 'QUOTA', 'EXPIRES', 'ID PATTERN', 'ALLOW-LIST'],
        list.map((s) => [s.claim.name, s.claim.profile, s.state, count(s.used), count(s.claim.maxDevices), time(s.claim.expiresAt), s.claim.idPattern, s.allowListSize === null ? null : count(s.allowListSize)]),
      );
      out(`${count(list.length)} claim(s)`);
    });

  subcommand(claim, 'show <name>', 'show one claim: its rules, quota left and the devices provisioned through it')
    .option('--limit <n>', 'devices to list at most', '1000')
    .option('--json', 'print the claim as JSON')
    .action(async (name: string, opts: Opts) => {
      const limit = positiveInt(opts.limit, '--limit');
      const { showClaim } = await import('../../operations/claim.js');
      const s = await withRegistry(opts.db, (reg) => showClaim(reg, name, limit), { readonly: true });
      const devices = s.devices.map((d) => ({ deviceId: d.deviceId, claimedAt: iso(d.claimedAt), address: d.address }));
      if (opts.json) {
        printJson({ ...claimJson(s), devices });
        return;
      }
      const c = s.claim;
      out(`claim:       ${c.name}`);
      out(`state:       ${s.state}${c.revokedReason ? ` (${c.revokedReason})` : ''}`);
      out(`profile:     ${c.profile}`);
      out(`quota:       ${count(s.used)} of ${count(c.maxDevices)} used, ${count(s.left)} left`);
      out(`id pattern:  ${c.idPattern ?? '(any device id)'}`);
      out(`broker url:  ${c.brokerUrl}`);
      out(`allow-list:  ${s.allowListSize === null ? '(none)' : `${count(s.allowListSize)} id(s)`}`);
      out(`created:     ${time(c.createdAt)}`);
      out(`expires:     ${time(c.expiresAt)}${s.state === 'active' ? ` (in ${formatDuration(Math.max(60_000, Math.round((c.expiresAt - Date.now()) / 60_000) * 60_000))})` : ''}`);
      if (c.revokedAt !== null) out(`revoked:     ${time(c.revokedAt)}`);
      out(`devices provisioned through it${s.used > devices.length ? ` (first ${count(devices.length)} of ${count(s.used)})` : ''}:`);
      printTable(['DEVICE', 'CLAIMED', 'ADDRESS'], s.devices.map((d) => [d.deviceId, time(d.claimedAt), d.address]));
      if (!devices.length) out('  (none)');
    });

  subcommand(claim, 'revoke <name>', 'stop a claim: no further claims (devices already provisioned through it keep working)')
    .option('--reason <text>', 'why (kept in the audit log)')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: Opts) => {
      const reason = checkReason(opts.reason);
      const { revokeClaim } = await import('../../operations/claim.js');
      const changed = await withRegistry(opts.db, (reg) => revokeClaim(reg, name, reason));
      if (opts.json) printJson({ claim: name, revoked: changed, alreadyRevoked: !changed });
      else out(changed ? `revoked claim ${name}: no further devices can claim through it; devices it provisioned keep working (revoke them with credbroker revoke ID)` : `claim ${name} was already revoked; nothing changed`);
    });

  subcommand(claim, 'extend <name>', 'make a claim expire a new duration from now (an expired claim opens again)')
    .requiredOption('--ttl <duration>', 'the claim expires this long from now, e.g. 30d')
    .option('--allow-shorten', 'allow a --ttl that brings the expiry closer than it is')
    .option('--json', 'print the claim as JSON')
    .action(async (name: string, opts: Opts & { allowShorten?: boolean }) => {
      const ttlMs = durationOption(opts.ttl, '--ttl')!;
      const { extendClaim, claimSummary } = await import('../../operations/claim.js');
      let was = 0;
      const s = await withRegistry(opts.db, async (reg) => {
        const claim = await extendClaim(reg, name, ttlMs, Date.now(), { allowShorten: !!opts.allowShorten });
        was = claim.previousExpiresAt;
        return claimSummary(reg, claim);
      });
      if (opts.json) printJson(claimJson(s));
      else out(`claim ${s.claim.name} now expires ${time(s.claim.expiresAt)} (was ${time(was)}; ${count(s.left)} of ${count(s.claim.maxDevices)} devices left)`);
    });
}
