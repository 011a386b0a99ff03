/**
 * Paged listings (`devices`, `audit`, `sessions`, ...): one pair of flags, one
 * JSON shape and one "there is more" line for every command that lists.
 *
 * The contract, for scripts:
 * - `--limit N` caps a listing; `--after CURSOR` continues after the `next`
 *   cursor of the previous page. An empty cursor (`--after ""`) is the first page.
 * - The JSON shape is chosen by the flags, never by the data, so that a script
 *   tested on a small registry does not break on a large one:
 *   - without `--after`: the bare array that `--json` always printed (nothing
 *     reshaped); when it was cut off, stderr says so and names the cursor;
 *   - with `--after`: `{"<what>": [...], "next": "CURSOR" | null}` — `devices`,
 *     `events`, `sessions`: the key names the rows, as `sessions` (which has no
 *     older array form) always prints; `next` is null on the last page.
 * Cursors are the listing's own key (a device id, an audit event id): readable,
 * and stable while rows are added.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors/index.js';
import { count, note, out, printJson } from './output.js';

/** The largest `--limit` accepted: one page is held in memory. */
export const MAX_LIMIT = 1_000_000;

/** What the user asked for; `after` is null for the first page. */
export interface PageRequest {
  readonly limit: number | null;
  readonly after: string | null;
  /** `--after` was given (even empty): print the `{"<what>": [...], next}` object under --json. */
  readonly paged: boolean;
}

export interface Page<T> {
  readonly items: T[];
  /** The cursor to pass as `--after` for the rest, or null when nothing is left. */
  readonly next: string | null;
}

export interface PagingFlags { limit?: string; after?: string }

/** Adds `--limit N` and `--after CURSOR`; `what` names the rows ("devices", also the JSON key), `defaultLimit` is shown in help. */
export function addPagingOptions(cmd: Command, what: string, defaultLimit: number | null, cursorHelp: string): Command {
  return cmd
    .option('--limit <n>', `at most N ${what}${defaultLimit === null ? ' (default: all)' : ` (default ${defaultLimit})`}`)
    .option('--after <cursor>', `continue after this cursor: the "next" of the previous page (${cursorHelp}); "" = the first page, and --json then prints {"${what}": [...], "next": CURSOR|null}`);
}

/** @throws UsageError for a limit that is not a whole number from 1 to MAX_LIMIT. */
export function parseLimit(raw: string, flag = '--limit'): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 1 || n > MAX_LIMIT) {
    throw new UsageError(`invalid ${flag} "${raw.slice(0, 20)}": use a whole number from 1 to ${MAX_LIMIT}`);
  }
  return n;
}

/** Reads the paging flags; `parseCursor` validates a non-empty cursor (and names --after in its error). */
export function pageRequest(flags: PagingFlags, defaultLimit: number | null, parseCursor: (raw: string) => string = (s) => s): PageRequest {
  const limit = flags.limit === undefined ? defaultLimit : parseLimit(flags.limit);
  const after = flags.after === undefined || flags.after === '' ? null : parseCursor(flags.after);
  return { limit, after, paged: flags.after !== undefined };
}

/**
 * Cuts rows fetched with `limit + 1` into a page: the extra row only tells that
 * more exist, and the cursor is the key of the last row shown.
 */
export function toPage<T>(rows: T[], limit: number | null, cursorOf: (row: T) => string): Page<T> {
  if (limit === null || rows.length <= limit) return { items: rows, next: null };
  const items = rows.slice(0, limit);
  return { items, next: cursorOf(items[items.length - 1]!) };
}

/** How many rows to fetch for a page: one more than shown, to know whether there is more. */
export function fetchLimit(req: PageRequest): number | null {
  return req.limit === null ? null : req.limit + 1;
}

/** `--json`: the bare array (no `--after`) or `{"<what>": [...], next}` (with `--after`); see the module comment. */
export function printPageJson<T>(page: Page<T>, req: PageRequest, toJson: (row: T) => unknown, what: string): void {
  const items = page.items.map(toJson);
  if (req.paged) {
    printJson({ [what]: items, next: page.next });
    return;
  }
  printJson(items);
  if (page.next !== null) note(`credbroker: cut off at ${count(page.items.length)} ${what}; the rest with --after ${page.next} (add --after "" to get {"${what}": [...], "next": ...} as JSON)`);
}

/** Text output: the line under a cut-off table that says how to get the rest. */
export function printPageFooter(page: Page<unknown>, what: string): void {
  if (page.next !== null) out(`more ${what} after these ${count(page.items.length)}: add --after ${page.next}`);
}
