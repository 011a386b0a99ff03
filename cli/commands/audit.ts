import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { AuditEvent } from '../../registry/audit.js';
import { parseDeviceId } from '../../registry/ids.js';
import { parseSince } from '../../util/time.js';
import { addDbOption, examples, withRegistry } from '../common.js';
import { iso, out, plural, printJson, time } from '../output.js';
import { printAudit } from './show.js';

interface Opts { db: string; device?: string; since?: string; limit: string; json?: boolean }

export function auditJson(e: AuditEvent): Record<string, unknown> {
  return { id: e.id, at: iso(e.at), actor: e.actor, action: e.action, deviceId: e.deviceId, details: e.details };
}

/** `key=value` pairs for a table cell. */
export function formatDetails(details: Record<string, unknown> | null): string {
  if (!details) return '';
  return Object.entries(details)
    .map(([k, v]) => `${k}=${
      Array.isArray(v) ? v.join(',')
        : typeof v === 'number' && k.endsWith('At') ? time(v)
          : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
    .join(' ');
}

export function registerAudit(program: Command): void {
  addDbOption(program.command('audit'))
    .description('show the audit log, newest first (provisioning, tokens, revocations, restores, key rotations, broker events)')
    .option('--device <id>', 'only events about this device')
    .option('--since <time>', 'only events since TIME: ISO 8601 (2024-05-01T08:00:00Z) or a duration meaning that long ago (1h, 7d)')
    .option('--limit <n>', 'at most N events', '100')
    .option('--json', 'print the events as a JSON array')
    .addHelpText('after', examples(
      'credbroker audit --since 1h',
      'credbroker audit --device pump-0042 --limit 20',
      'credbroker audit --since 2024-05-01T00:00:00Z --json | jq ".[] | select(.action == \\"device.revoke\\")"',
    ))
    .action(async (opts: Opts) => {
      const limit = Number(opts.limit);
      if (!/^\d+$/.test(opts.limit) || !Number.isSafeInteger(limit) || limit < 1 || limit > 1_000_000) {
        throw new UsageError(`invalid --limit "${opts.limit.slice(0, 20)}": use a whole number from 1 to 1000000`);
      }
      const deviceId = opts.device === undefined ? undefined : parseDeviceId(opts.device);
      const since = opts.since === undefined ? undefined : parseSince(opts.since);
      const events = await withRegistry(opts.db, (reg) => reg.audit.query({ deviceId, since, limit }), { readonly: true });
      if (opts.json) {
        printJson(events.map(auditJson));
        return;
      }
      printAudit(events);
      out(`${plural(events.length, 'event')}${events.length === limit ? ` (the newest ${limit}; use --limit for more)` : ''}`);
    });
}
