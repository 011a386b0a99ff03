import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import { isDeviceId, parseDeviceId } from '../../registry/ids.js';
import { examples } from '../common.js';
import { DEFAULT_BROKER_HTTP, fetchSessions, parseBrokerUrl } from '../ops-http.js';
import { out, plural, printJson, printTable, time } from '../output.js';

interface Opts { broker: string; device?: string; limit: string; after?: string; json?: boolean }

/** The broker's own page cap (`GET /sessions?limit=`): one request, one bounded answer. */
const MAX_LIMIT = 1000;
const TIMEOUT_MS = 5000;

/** `credbroker sessions`: who is connected now, read from the running broker's ops HTTP port. */
export function registerSessions(program: Command): void {
  program
    .command('sessions')
    .description('who is connected now: device, kind, transport, address, since when, token expiry (from the broker\'s ops HTTP port)')
    .option('--broker <url>', 'the broker\'s ops HTTP address (serve --http-port)', DEFAULT_BROKER_HTTP)
    .option('--device <id>', 'only this device\'s session')
    .option('--limit <n>', `at most N sessions, ordered by device id (1–${MAX_LIMIT})`, '100')
    .option('--after <cursor>', 'continue after this cursor (the "next" of the previous page)')
    .option('--json', 'print {"sessions": [...], "next": cursor or null} as JSON')
    .addHelpText('after', examples(
      'credbroker sessions',
      'credbroker sessions --device pump-0042',
      'credbroker sessions --broker http://10.0.0.5:9100 --limit 1000 --json | jq -r ".sessions[].deviceId"',
    ))
    .action(async (opts: Opts) => {
      const broker = parseBrokerUrl(opts.broker);
      const limit = Number(opts.limit);
      if (!/^\d+$/.test(opts.limit) || limit < 1 || limit > MAX_LIMIT) {
        throw new UsageError(`invalid --limit "${opts.limit.slice(0, 20)}": use a whole number from 1 to ${MAX_LIMIT}`);
      }
      const device = opts.device === undefined ? undefined : parseDeviceId(opts.device);
      if (opts.after !== undefined && !isDeviceId(opts.after)) throw new UsageError(`invalid --after "${opts.after.slice(0, 40)}": use the "next" cursor a previous page printed`);
      const after = opts.after;
      const page = await fetchSessions(broker, { limit, after, device }, TIMEOUT_MS);
      if (opts.json) {
        printJson(page);
        return;
      }
      if (device !== undefined && page.sessions.length === 0) {
        out(`${device} is not connected`);
        return;
      }
      printTable(
        ['DEVICE', 'KIND', 'TRANSPORT', 'ADDRESS', 'CONNECTED', 'EXPIRES'],
        page.sessions.map((s) => [s.deviceId, s.kind, s.transport, s.address, time(Date.parse(s.connectedAt)), time(Date.parse(s.expiresAt))]),
      );
      out(`${plural(page.sessions.length, 'session')}${page.next ? ` (more: credbroker sessions --after ${page.next})` : ''}`);
    });
}
