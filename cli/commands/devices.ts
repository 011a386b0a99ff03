import { Option, type Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { DeviceStatus } from '../../registry/index.js';
import { describe, isDeviceId } from '../../registry/ids.js';
import { addDbOption, deviceIdArgs, examples, subcommand, withRegistry } from '../common.js';
import { count, out, plural, printJson, printTable, time } from '../output.js';
import { deviceJson } from '../../operations/json-views.js';
import { addPagingOptions, fetchLimit, pageRequest, printPageFooter, printPageJson, toPage, type PagingFlags } from '../paging.js';

interface Opts extends PagingFlags { db: string; status?: DeviceStatus; profile?: string; search?: string; json?: boolean }


/** A `--search` prefix: the start of a device id. */
function parsePrefix(raw: string): string {
  if (/^[A-Za-z0-9._:-]{1,128}$/.test(raw)) return raw;
  throw new UsageError(`invalid --search ${describe(raw)}: give the start of a device id (letters, digits, '.', '_', ':' and '-')`);
}

export function registerDevices(program: Command): void {
  const cmd = addDbOption(program.command('devices'))
    .description('list devices, ordered by id')
    .enablePositionalOptions() // options after "delete" are delete's own (see buildProgram)
    .addOption(new Option('--status <status>', 'only devices with this status').choices(['active', 'revoked']))
    .option('--profile <name>', 'only devices with this profile')
    .option('--search <prefix>', 'only devices whose id starts with PREFIX');
  addPagingOptions(cmd, 'devices', null, 'a device id')
    .option('--json', 'print the devices as a JSON array (with --after: {"devices": [...], "next": ...})')
    .addHelpText('after', examples(
      'credbroker devices',
      'credbroker devices --status revoked',
      'credbroker devices --search pump- --limit 50',
      'credbroker devices --limit 50 --after pump-0050',
      'credbroker devices --profile sensor --json | jq -r ".[].id"',
    ) + `
Paging in a script: start with --after "" and pass each page's "next" back until it is null:
  cursor=""; while page=$(credbroker devices --json --limit 1000 --after "$cursor"); do
    jq -r ".devices[].id" <<<"$page"; cursor=$(jq -r ".next // empty" <<<"$page"); [ -n "$cursor" ] || break; done
`)
    .action(async (opts: Opts) => {
      const req = pageRequest(opts, null, (raw) => {
        if (isDeviceId(raw)) return raw;
        throw new UsageError(`invalid --after ${describe(raw)}: the cursor is a device id (the "next" of the previous page)`);
      });
      const prefix = opts.search === undefined ? undefined : parsePrefix(opts.search);
      const list = await withRegistry(opts.db, async (reg) => {
        if (opts.profile !== undefined) await reg.profiles.require(opts.profile); // a typo is "unknown profile", not an empty list
        return reg.devices.list({ status: opts.status, profile: opts.profile, prefix, after: req.after ?? undefined, limit: fetchLimit(req) });
      }, { readonly: true });
      const page = toPage(list, req.limit, (d) => d.id);
      if (opts.json) {
        printPageJson(page, req, deviceJson, 'devices');
        return;
      }
      printTable(
        ['ID', 'PROFILE', 'STATUS', 'CREATED', 'LAST SEEN', 'CREDENTIAL EXPIRES', 'REVOKED REASON'],
        page.items.map((d) => [d.id, d.profile, d.simulation ? `${d.status} (simulation)` : d.status, time(d.createdAt), time(d.lastSeenAt), time(d.credentialExpiresAt), d.revokedReason]),
      );
      const revoked = page.items.filter((d) => d.status === 'revoked').length;
      out(`${count(page.items.length)} device(s): ${count(page.items.length - revoked)} active, ${count(revoked)} revoked`);
      printPageFooter(page, 'devices');
    });
  registerDelete(cmd);
  registerMove(cmd);
}

interface DeleteOpts { db: string; json?: boolean }

/** `devices delete ID...`: a thin shell over operations/deleteDevices. */
function registerDelete(devices: Command): void {
  subcommand(devices, 'delete', 'delete revoked devices from the registry (all or nothing; audited, the audit log keeps their history)')
    .argument('<ids...>', 'device ids, each revoked and with every token expired')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', examples(
      'credbroker devices delete pump-0042',
      'credbroker devices --status revoked --json | jq -r ".[].id" | xargs credbroker devices delete',
    ) + `
Only a revoked device can be deleted, and only once its last token has expired (a minute
after its expiry): a broker started later must still refuse a token within its lifetime.
The id may then be provisioned again.
`)
    .action(async (ids: string[], opts: DeleteOpts) => {
      const deviceIds = deviceIdArgs(ids);
      const { deleteDevices } = await import('../../operations/delete-devices.js');
      const deleted = await withRegistry(opts.db, (reg) => deleteDevices(reg, deviceIds));
      if (opts.json) {
        printJson({ deleted: deleted.map((d) => d.deviceId) });
        return;
      }
      for (const d of deleted) out(`deleted ${d.deviceId} (profile ${d.profile})`);
      out(`deleted ${plural(deleted.length, 'device')}`);
    });
}

/** `devices move ID... --profile NAME`: a thin shell over operations/moveDevices. */
function registerMove(devices: Command): void {
  subcommand(devices, 'move', 'move devices to another profile (all or nothing; audited): their next token carries the new ACL')
    .argument('<ids...>', 'device ids')
    .requiredOption('--profile <name>', 'the profile to move them to')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', examples('credbroker devices move pump-0042 pump-0043 --profile observer') + `
Live tokens keep the ACL they were minted with until they expire: the device gets the new
profile's ACL with its next token (renewal). To apply it at once, revoke its current tokens
("credbroker revoke --token JTI", see "credbroker show ID"): it comes back through its refresh credential.
`)
    .action(async (ids: string[], opts: DeleteOpts & { profile: string }) => {
      const deviceIds = deviceIdArgs(ids);
      const { moveDevices } = await import('../../operations/move-devices.js');
      const moved = await withRegistry(opts.db, (reg) => moveDevices(reg, deviceIds, opts.profile));
      if (opts.json) {
        printJson({ profile: opts.profile, devices: moved.map((m) => ({ deviceId: m.deviceId, from: m.from, moved: m.changed })) });
        return;
      }
      for (const m of moved) out(m.changed ? `moved ${m.deviceId} from profile ${m.from} to ${opts.profile}` : `${m.deviceId} is in profile ${opts.profile} already`);
      out(`moved ${plural(moved.filter((m) => m.changed).length, 'device')}; the new ACL takes effect with each device's next token (renewal)`);
    });
}
