import type { Command } from 'commander';
import { formatDuration } from '../../util/duration.js';
import { profileJson } from '../../operations/json-views.js';
import { durationOption, examples, subcommand, withRegistry } from '../common.js';
import { count, out, printJson, printTable, time } from '../output.js';

interface SetOpts { db: string; pub?: string[]; sub?: string[]; ttl?: string; json?: boolean }
interface ListOpts { db: string; json?: boolean }


export function registerProfile(program: Command): void {
  const profile = program.command('profile')
    .description('manage ACL profiles: publish/subscribe patterns ({device}, +, #) and token lifetime')
    .addHelpText('after', examples(
      'credbroker profile list',
      'credbroker profile show sensor',
      'credbroker profile set valve --pub "devices/{device}/state" --sub "devices/{device}/set/#" --ttl 30m',
    ));

  subcommand(profile, 'set <name>', 'create or update a profile (patterns not given keep their current value)')
    .option('--pub <pattern...>', 'topics the device may publish to (MQTT filter; {device} is the device id)')
    .option('--sub <pattern...>', 'filters the device may subscribe to; a subscription is allowed only if one pattern covers it')
    .option('--ttl <duration>', 'access token lifetime for this profile (default 1h, at most 24h)')
    .option('--json', 'print the profile as JSON')
    .addHelpText('after', examples(
      'credbroker profile set valve --pub "devices/{device}/state" "devices/{device}/events/#" --sub "devices/{device}/set/#"',
      'credbroker profile set sensor --ttl 15m',
      'credbroker profile set dashboard --sub "devices/+/telemetry" --ttl 8h',
    ) + `
Quote patterns with # or {device} in the shell. Tokens already issued keep the ACL they
were minted with until they are renewed.
`)
    .action(async (name: string, opts: SetOpts) => {
      const tokenTtlMs = durationOption(opts.ttl, '--ttl');
      const { setProfile } = await import('../../operations/profile.js');
      const { checkTtl } = await import('../../tokens/mint.js');
      const r = await withRegistry(opts.db, async (reg) => {
        if (tokenTtlMs !== undefined) checkTtl(tokenTtlMs, await reg.settings.read(), `--ttl ${opts.ttl}`);
        return setProfile(reg, { name, publish: opts.pub, subscribe: opts.sub, tokenTtlMs });
      });
      if (opts.json) printJson(profileJson(r.profile));
      else {
        out(`${r.created ? 'created' : 'updated'} profile ${r.profile.name}: publish ${r.profile.publish.join(' ') || '-'}; subscribe ${r.profile.subscribe.join(' ') || '-'}; token ttl ${formatDuration(r.profile.tokenTtlMs)}`);
        if (!r.created) out('tokens already issued keep their old ACL until they are renewed');
      }
    });

  subcommand(profile, 'list', 'list profiles with their token lifetime, device count and patterns')
    .option('--json', 'print the profiles as a JSON array')
    .addHelpText('after', examples('credbroker profile list', 'credbroker profile list --json | jq -r ".[].name"'))
    .action(async (opts: ListOpts) => {
      const { list, usage } = await withRegistry(opts.db, async (reg) => ({ list: await reg.profiles.list(), usage: await reg.devices.countByProfile() }), { readonly: true });
      if (opts.json) {
        printJson(list.map((p) => profileJson(p, usage.get(p.name) ?? 0)));
        return;
      }
      printTable(
        ['NAME', 'TOKEN TTL', 'DEVICES', 'PUBLISH', 'SUBSCRIBE'],
        list.map((p) => [p.name, formatDuration(p.tokenTtlMs), count(usage.get(p.name) ?? 0), p.publish.join(' '), p.subscribe.join(' ')]),
      );
      out(`${count(list.length)} profile(s)`);
    });

  subcommand(profile, 'delete <name>', 'delete a profile that no device uses (audited)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', examples('credbroker profile delete valve', 'credbroker profile delete sim-sensor'))
    .action(async (name: string, opts: ListOpts) => {
      const { deleteProfile } = await import('../../operations/delete-profile.js');
      await withRegistry(opts.db, (reg) => deleteProfile(reg, name));
      if (opts.json) printJson({ deleted: name });
      else out(`deleted profile ${name}`);
    });

  subcommand(profile, 'show <name>', 'show one profile')
    .option('--json', 'print the profile as JSON')
    .addHelpText('after', examples('credbroker profile show sensor', 'credbroker profile show sensor --json'))
    .action(async (name: string, opts: ListOpts) => {
      const { p, devices } = await withRegistry(opts.db, async (reg) => {
        const p = await reg.profiles.require(name);
        return { p, devices: (await reg.devices.countByProfile()).get(p.name) ?? 0 };
      }, { readonly: true });
      if (opts.json) {
        printJson(profileJson(p, devices));
        return;
      }
      out(`profile:    ${p.name}`);
      out(`token ttl:  ${formatDuration(p.tokenTtlMs)}`);
      out(`devices:    ${count(devices)}`);
      out(`created:    ${time(p.createdAt)}`);
      out(`updated:    ${time(p.updatedAt)}`);
      out('publish:');
      for (const x of p.publish) out(`  ${x}`);
      if (!p.publish.length) out('  (none)');
      out('subscribe:');
      for (const x of p.subscribe) out(`  ${x}`);
      if (!p.subscribe.length) out('  (none)');
    });
}
