import type { Command } from 'commander';
import type { AuditEvent } from '../../registry/index.js';
import { parseDeviceId } from '../../registry/ids.js';
import { addDbOption, examples, withRegistry } from '../common.js';
import { UsageError } from '../../errors/index.js';
import { DEFAULT_BROKER_HTTP, liveSession, parseBrokerUrl } from '../ops-http.js';
import { count, out, printJson, printTable, time } from '../output.js';
import { formatDetails } from './audit.js';
import { deviceSummaryJson } from '../../operations/json-views.js';

interface Opts { db: string; json?: boolean; events: string; broker: string; stats?: boolean }

export function registerShow(program: Command): void {
  addDbOption(program.command('show'))
    .description('show a device: status, profile, live tokens (jti and expiry), refresh credentials, recent audit events; or, with --stats, the registry itself')
    .argument('[id]', 'device id')
    .option('--events <n>', 'how many recent audit events', '10')
    .option('--stats', "the registry's size on disk and rows per table (instead of a device)")
    .option('--json', 'print the summary as JSON')
    .option('--broker <url>', 'the broker\'s ops HTTP address, asked whether the device is connected (left out when it does not answer)', DEFAULT_BROKER_HTTP)
    .addHelpText('after', examples('credbroker show pump-0001', 'credbroker show pump-0001 --json | jq -r ".liveTokens[].jti"', 'credbroker show --stats'))
    .action(async (id: string | undefined, opts: Opts) => {
      if (opts.stats) {
        if (id !== undefined) throw new UsageError('--stats shows the registry, not a device: give no device id with it');
        return showStats(opts);
      }
      if (id === undefined) throw new UsageError('give a device id (credbroker show ID), or --stats for the registry');
      const deviceId = parseDeviceId(id);
      const broker = parseBrokerUrl(opts.broker);
      const auditLimit = Math.min(Math.max(Number.parseInt(opts.events, 10) || 10, 1), 1000);
      const { deviceSummary } = await import('../../operations/show.js');
      const live = liveSession(broker, deviceId); // asked while the registry is read
      const s = await withRegistry(opts.db, (reg) => deviceSummary(reg, deviceId, { auditLimit }), { readonly: true });
      const session = await live;
      if (opts.json) {
        printJson({
          ...deviceSummaryJson(s),
          // Present only when the broker answered: null = not connected.
          ...(session === undefined ? {} : { session }),
        });
        return;
      }
      const d = s.device;
      const fields: [string, string][] = [
        ['device', d.id],
        ['status', d.status === 'revoked' ? `revoked at ${time(d.revokedAt)}: ${d.revokedReason ?? ''}` : 'active'],
        ['profile', s.profile ? `${d.profile} (publish ${s.profile.publish.join(' ') || '-'}; subscribe ${s.profile.subscribe.join(' ') || '-'})` : d.profile],
        ['created', time(d.createdAt)],
        ['last seen', time(d.lastSeenAt)],
        ['credential expires', time(d.credentialExpiresAt)],
      ];
      if (session !== undefined) {
        fields.push(['connected', session ? `yes, ${session.kind} session over ${session.transport} from ${session.address} since ${time(Date.parse(session.connectedAt))}, expires ${time(Date.parse(session.expiresAt))}` : 'no']);
      }
      if (d.tokensValidAfter) fields.push(['tokens valid after', `${time(d.tokensValidAfter * 1000)} (restored: older tokens are refused)`]);
      const width = Math.max(...fields.map(([k]) => k.length));
      for (const [k, v] of fields) out(`${`${k}:`.padEnd(width + 1)}  ${v}`);
      out();
      out(`live tokens (${s.liveTokens.length}):`);
      printTable(['JTI', 'ISSUED', 'EXPIRES', 'KID'], s.liveTokens.map((t) => [t.jti, time(t.issuedAt), time(t.expiresAt), t.kid]));
      if (s.deadTokens.length) {
        out();
        out(`dead tokens (${s.deadTokens.length}): not expired, but their signing key was killed (keys rotate --now); the broker refuses them`);
        printTable(['JTI', 'ISSUED', 'EXPIRES', 'KID'], s.deadTokens.map(({ token: t }) => [t.jti, time(t.issuedAt), time(t.expiresAt), `${t.kid} (killed)`]));
      }
      out();
      out(`refresh credentials (${s.refreshCredentials.length}):`);
      printTable(['STATE', 'ISSUED', 'EXPIRES', 'USED'], s.refreshCredentials.map((r) => [r.state, time(r.issuedAt), time(r.expiresAt), time(r.usedAt)]));
      out();
      out(`recent audit events (${s.recentAudit.length}):`);
      printAudit(s.recentAudit, false);
    });
}

/** `show --stats`: the registry's size, free pages, how the engine gets space back, and rows per table. */
async function showStats(opts: Opts): Promise<void> {
  const { s, where } = await withRegistry(opts.db, async (reg) => ({ s: await reg.space.stats(), where: reg.location }), { readonly: true });
  if (opts.json) {
    printJson({ db: where, ...s });
    return;
  }
  out(`registry:   ${where}`);
  // Each engine's own measures: a field it does not have (null) is left out, not shown as 0.
  const free = s.freePages === null ? '' : `, ${count(s.freePages)} free`;
  out(`size:       ${mib(s.fileBytes)}${s.walBytes ? ` + ${mib(s.walBytes)} write-ahead log` : ''} (${count(s.pages)} pages of ${s.pageSize} B${free})`);
  if (s.deadRows !== null) out(`dead rows:  ${count(s.deadRows)} (not yet vacuumed)`);
  out(`upkeep:     ${s.upkeep}`);
  out();
  const bytes = s.tableBytes;
  printTable(['TABLE', 'ROWS', ...(bytes ? ['SIZE'] : [])], Object.entries(s.rows).map(([table, n]) => [table, count(n), ...(bytes ? [mib(bytes[table] ?? 0)] : [])]));
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(2)} MiB`;

export function printAudit(events: readonly AuditEvent[], withDevice = true): void {
  printTable(
    withDevice ? ['TIME', 'ACTOR', 'ACTION', 'DEVICE', 'DETAILS'] : ['TIME', 'ACTOR', 'ACTION', 'DETAILS'],
    events.map((e) => [time(e.at), e.actor, e.action, ...(withDevice ? [e.deviceId] : []), formatDetails(e.details)]),
  );
}
