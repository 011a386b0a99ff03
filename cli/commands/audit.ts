import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import { describe, parseSubjectId } from '../../registry/ids.js';
import { parseSince } from '../../util/time.js';
import { didYouMean } from '../../util/did-you-mean.js';
import { AUDIT_ACTIONS } from '../../operations/audit-actions.js';
import { addDbOption, durationOption, examples, subcommand, withRegistry } from '../common.js';
import { iso, out, plural, printJson, time } from '../output.js';
import { addPagingOptions, fetchLimit, pageRequest, printPageFooter, printPageJson, toPage, type PagingFlags } from '../paging.js';
import { printAudit } from './show.js';
import { auditJson } from '../../operations/json-views.js';

interface Opts extends PagingFlags { db: string; device?: string; since?: string; action?: string; json?: boolean }

/** Shown when --limit is not given (the newest events are what an operator looks at first). */
const DEFAULT_LIMIT = 100;


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

/** `--action`: an action name (`device.revoke`) or a prefix ending in `*` (`device.*`). */
function parseAction(raw: string): string {
  if (/^[A-Za-z0-9._-]{1,64}\*?$|^\*$/.test(raw)) return raw;
  throw new UsageError(`invalid --action ${describe(raw)}: give an action such as device.revoke, or a prefix ending in * such as "device.*"`);
}

/** The `--after` cursor of the audit log: an event id. */
function parseEventCursor(raw: string): string {
  if (/^[1-9]\d{0,15}$/.test(raw)) return raw;
  throw new UsageError(`invalid --after ${describe(raw)}: the cursor is an audit event id (the "next" of the previous page)`);
}

export function registerAudit(program: Command): void {
  // Positional options: `audit prune --db F` gives --db to prune, not to the listing.
  const cmd = addDbOption(program.command('audit')).enablePositionalOptions()
    .description('show the audit log, newest first (provisioning, tokens, revocations, restores, key rotations, broker events)')
    .option('--device <id>', 'only events about this device (or grant:NAME: a grant)')
    .option('--action <action>', 'only events with this action (device.revoke), or a prefix ending in * ("device.*")')
    .option('--since <time>', 'only events since TIME: ISO 8601 (2024-05-01T08:00:00Z) or a duration meaning that long ago (1h, 7d)');
  addPagingOptions(cmd, 'events', DEFAULT_LIMIT, 'an event id: the page goes on with older events')
    .option('--json', 'print the events as a JSON array (with --after: {"events": [...], "next": ...})')
    .addHelpText('after', examples(
      'credbroker audit --since 1h',
      'credbroker audit --device pump-0042 --limit 20',
      'credbroker audit --action device.revoke --since 7d',
      'credbroker audit --action "token.*" --limit 50 --after 1234',
      'credbroker audit --since 2024-05-01T00:00:00Z --json | jq ".[] | select(.action == \\"device.revoke\\")"',
    ))
    .action(async (opts: Opts) => {
      const req = pageRequest(opts, DEFAULT_LIMIT, parseEventCursor);
      const deviceId = opts.device === undefined ? undefined : parseSubjectId(opts.device);
      const since = opts.since === undefined ? undefined : parseSince(opts.since);
      const action = opts.action === undefined ? undefined : parseAction(opts.action);
      const before = req.after === null ? undefined : Number(req.after);
      const events = await withRegistry(opts.db, async (reg) => {
        const found = await reg.audit.query({ deviceId, since, action, before, limit: fetchLimit(req) });
        // An action credbroker never writes, and that this log does not hold either (another version's): a typo.
        if (found.length === 0 && action !== undefined && !action.endsWith('*') && !AUDIT_ACTIONS.includes(action) && (await reg.audit.query({ action, limit: 1 })).length === 0) {
          const guess = didYouMean(action, AUDIT_ACTIONS);
          throw new UsageError(`unknown --action "${action}"${guess ? `: did you mean "${guess}"?` : ''} (known: ${AUDIT_ACTIONS.join(', ')}; or a prefix such as "device.*")`);
        }
        return found;
      }, { readonly: true });
      const page = toPage(events, req.limit, (e) => String(e.id));
      if (opts.json) {
        printPageJson(page, req, auditJson, 'events');
        return;
      }
      printAudit(page.items);
      out(plural(page.items.length, 'event'));
      printPageFooter(page, 'events');
    });
  registerAuditPrune(cmd);
}

/** `credbroker audit prune --older-than D`: what the broker's `auditRetention` does, on demand. */
function registerAuditPrune(audit: Command): void {
  subcommand(audit, 'prune', 'delete audit events older than a duration and give the space back to the file system')
    .requiredOption('--older-than <duration>', 'delete events older than this (30s, 15m, 1h, 7d)')
    .option('--json', 'print {"pruned": N, "before": ISO} as JSON')
    .addHelpText('after', examples('credbroker audit prune --older-than 90d', 'credbroker audit prune --older-than 7d --json'))
    .action(async (opts: { db: string; olderThan: string; json?: boolean }) => {
      const before = Date.now() - durationOption(opts.olderThan, '--older-than')!;
      const { pruneAudit } = await import('../../operations/retention.js');
      const res = await withRegistry(opts.db, (reg) => pruneAudit(reg, before));
      if (opts.json) printJson({ pruned: res.audit, before: iso(before) });
      else out(`pruned ${plural(res.audit, 'audit event')} older than ${iso(before)}`);
    });
}
