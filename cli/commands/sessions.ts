import type { Command } from 'commander';
import type { SessionView } from '../../broker/session-list.js';
import { UsageError } from '../../errors/index.js';
import { describe, isDeviceId, isGrantPrincipal, parseSubjectId } from '../../registry/ids.js';
import { examples } from '../common.js';
import { DEFAULT_BROKER_HTTP, fetchSessions, parseBrokerUrl } from '../ops-http.js';
import { out, plural, printTable, time } from '../output.js';
import { addPagingOptions, fetchLimit, pageRequest, printPageFooter, printPageJson, toPage, type PagingFlags } from '../paging.js';

interface Opts extends PagingFlags { broker: string; device?: string; json?: boolean }

/** The broker's own page cap (`GET /sessions?limit=`): a longer listing takes several requests. */
const BROKER_PAGE = 1000;
const DEFAULT_LIMIT = 100;
const TIMEOUT_MS = 5000;

/** `credbroker sessions`: who is connected now, read from the running broker's ops HTTP port. */
export function registerSessions(program: Command): void {
  const cmd = program
    .command('sessions')
    .description('who is connected now, ordered by device id: kind, transport, address, since when, token expiry (from the broker\'s ops HTTP port)')
    .option('--broker <url>', 'the broker\'s ops HTTP address (serve --http-host/--http-port)', DEFAULT_BROKER_HTTP)
    .option('--device <id>', 'only this device\'s session (or grant:NAME: a grant\'s)');
  addPagingOptions(cmd, 'sessions', DEFAULT_LIMIT, 'a device id')
    .option('--json', 'print the sessions as a JSON array (with --after: {"sessions": [...], "next": ...}, as GET /sessions)')
    .addHelpText('after', examples(
      'credbroker sessions',
      'credbroker sessions --device pump-0042',
      'credbroker sessions --limit 50 --after pump-0050',
      'credbroker sessions --broker http://10.0.0.5:9100 --limit 100000 --json | jq -r ".[].deviceId"',
    ))
    .action(async (opts: Opts) => {
      const broker = parseBrokerUrl(opts.broker);
      const req = pageRequest(opts, DEFAULT_LIMIT, (raw) => {
        if (isDeviceId(raw) || isGrantPrincipal(raw)) return raw;
        throw new UsageError(`invalid --after ${describe(raw)}: the cursor is a device id (the "next" of the previous page)`);
      });
      const device = opts.device === undefined ? undefined : parseSubjectId(opts.device);
      const want = fetchLimit(req)!;
      const rows: SessionView[] = [];
      let after = req.after ?? undefined;
      for (;;) {
        const got = await fetchSessions(broker, { limit: Math.min(BROKER_PAGE, want - rows.length), after, device }, TIMEOUT_MS);
        rows.push(...got.sessions);
        if (got.next === null || rows.length >= want) break;
        after = got.next;
      }
      const page = toPage(rows, req.limit, (s) => s.deviceId);
      if (opts.json) {
        printPageJson(page, req, (s) => s, 'sessions');
        return;
      }
      if (device !== undefined && page.items.length === 0) {
        out(`${device} is not connected`);
        return;
      }
      printTable(
        ['DEVICE', 'KIND', 'TRANSPORT', 'ADDRESS', 'CONNECTED', 'EXPIRES'],
        page.items.map((s) => [s.deviceId, s.kind, s.transport, s.address, time(Date.parse(s.connectedAt)), time(Date.parse(s.expiresAt))]),
      );
      out(plural(page.items.length, 'session'));
      printPageFooter(page, 'sessions');
    });
}
