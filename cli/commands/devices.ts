import { Option, type Command } from 'commander';
import type { Device, DeviceStatus } from '../../registry/devices.js';
import { addDbOption, examples, withRegistry } from '../common.js';
import { count, iso, out, printJson, printTable, time } from '../output.js';

interface Opts { db: string; status?: DeviceStatus; profile?: string; json?: boolean }

/** The JSON form of a device (times as ISO 8601). */
export function deviceJson(d: Device): Record<string, unknown> {
  return {
    id: d.id, profile: d.profile, status: d.status, revokedReason: d.revokedReason, revokedAt: iso(d.revokedAt),
    tokensValidAfter: d.tokensValidAfter ? iso(d.tokensValidAfter * 1000) : null,
    credentialExpiresAt: iso(d.credentialExpiresAt), createdAt: iso(d.createdAt), lastSeenAt: iso(d.lastSeenAt),
  };
}

export function registerDevices(program: Command): void {
  addDbOption(program.command('devices'))
    .description('list devices')
    .addOption(new Option('--status <status>', 'only devices with this status').choices(['active', 'revoked']))
    .option('--profile <name>', 'only devices with this profile')
    .option('--json', 'print the devices as a JSON array')
    .addHelpText('after', examples(
      'credbroker devices',
      'credbroker devices --status revoked',
      'credbroker devices --profile sensor --json | jq -r ".[].id"',
    ))
    .action(async (opts: Opts) => {
      const list = await withRegistry(opts.db, (reg) => reg.devices.list({ status: opts.status, profile: opts.profile }), { readonly: true });
      if (opts.json) {
        printJson(list.map(deviceJson));
        return;
      }
      printTable(
        ['ID', 'PROFILE', 'STATUS', 'CREATED', 'LAST SEEN', 'CREDENTIAL EXPIRES', 'REVOKED REASON'],
        list.map((d) => [d.id, d.profile, d.status, time(d.createdAt), time(d.lastSeenAt), time(d.credentialExpiresAt), d.revokedReason]),
      );
      const revoked = list.filter((d) => d.status === 'revoked').length;
      out(`${count(list.length)} device(s): ${count(list.length - revoked)} active, ${count(revoked)} revoked`);
    });
}
