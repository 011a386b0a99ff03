import type { Command } from 'commander';
import { grantPrincipal } from '../../registry/ids.js';
import { grantJson } from '../../operations/json-views.js';
import { addDbOption, durationOption, examples, withIssuer } from '../common.js';
import { note, out, printJson, time } from '../output.js';

interface Opts { db: string; pub?: string[]; sub?: string[]; ttl: string; within?: string; reason?: string; json?: boolean }


/** `credbroker grant NAME`: a thin shell over operations/issueGrant. */
export function registerGrant(program: Command): void {
  addDbOption(program.command('grant'))
    .description('mint a short-lived, non-renewable token for a person or app (grant:NAME) with exactly the topics given, and print it')
    .argument('<name>', 'who it is for: 1-64 letters, digits, ".", "_" or "-" (connects as user name and client id grant:NAME)')
    .option('--pub <pattern...>', 'topics it may publish to (MQTT filter)')
    .option('--sub <pattern...>', 'filters it may subscribe to (a subscription is allowed only if one pattern covers it)')
    .requiredOption('--ttl <duration>', 'how long it lasts (at most the registry\'s grant cap, 24h by default); it is never renewed')
    .option('--within <device>', 'refuse any pattern outside this device\'s own ACL; {device} in a pattern stands for its id')
    .option('--reason <text>', 'why (kept in the registry and in every audit row of the grant; it travels in the token: no secrets)')
    .option('--json', 'print {name, principal, jti, token, expiresAt, ...} as JSON')
    .addHelpText('after', examples(
      'credbroker grant tech-anna --within fleet-observer --sub devices/pump-0042/telemetry --ttl 30m --reason "on-site inspection INC-4711"',
      'credbroker grant acme-dashboard --within fleet-observer --sub "devices/site-nord/#" --ttl 24h --reason "partner dashboard, site Nord"',
      'credbroker grant support-joe --within fleet-observer --pub devices/pump-0042/commands/reboot --ttl 15m --reason "SUP-982"',
      'mosquitto_sub -u grant:tech-anna -i grant:tech-anna -P "$(credbroker grant tech-anna --sub "devices/pump-0042/telemetry" --ttl 30m)" -t devices/pump-0042/telemetry',
    ) + `
--within names an identity you trust (typically a backend device with an observer-like
profile): each --sub pattern must lie inside one of its subscribe patterns, each --pub
pattern inside one of its publish patterns, as the broker judges a SUBSCRIBE.
The token alone goes to stdout (so it can be captured); its jti and expiry go to stderr.
It is a bearer secret: hand it over like a password. Topics under $ ($devices, $claims,
$SYS) are never grantable. A name may be granted again once its grant has expired or
been revoked ("credbroker revoke --grant NAME" kills it within a second).
`)
    .action(async (name: string, opts: Opts) => {
      const ttlMs = durationOption(opts.ttl, '--ttl')!;
      const { issueGrant } = await import('../../operations/grant.js');
      const { DEFAULT_CONFIG } = await import('../../broker/config.js');
      const r = await withIssuer(opts.db, (issuer) => issueGrant(issuer, {
        name, publish: opts.pub ?? [], subscribe: opts.sub ?? [], ttlMs, ttlGiven: `--ttl ${opts.ttl}`,
        within: opts.within, reason: opts.reason, maxTokenBytes: DEFAULT_CONFIG.maxPasswordBytes,
      }));
      if (opts.json) {
        printJson({ ...grantJson(r.grant), token: r.token });
        return;
      }
      out(r.token);
      note(`granted ${grantPrincipal(r.grant.name)}: jti ${r.grant.jti}, expires ${time(r.grant.expiresAt)}; connect with user name and client id ${grantPrincipal(r.grant.name)}`);
    });
}
