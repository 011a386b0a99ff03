import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { UsageError } from '../errors/index.js';
import { batchText, otherDelimiter, printable } from './batch-sniff.js';

/** One row of a factory batch, with its line number for error reports. */
export interface BatchRow {
  readonly line: number;
  readonly id: unknown;
  readonly profile?: unknown;
  /** Set when the row itself could not be read. */
  readonly problem?: string;
}

/**
 * Reads a batch: CSV with a header row (column `id`, optional `profile`) or JSON
 * lines with the same keys, chosen by extension; `-` reads standard input and
 * sniffs the format from the first character.
 */
export function readBatchFile(path: string): BatchRow[] {
  let buf: Buffer;
  try {
    buf = readFileSync(path === '-' ? 0 : path);
  } catch (err) {
    throw new UsageError(`cannot read batch file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const text = batchText(buf, path === '-' ? '(standard input)' : path);
  const jsonl = path.endsWith('.jsonl') || path.endsWith('.ndjson') || ((path === '-' || path.endsWith('.json')) && text.trimStart().startsWith('{'));
  return jsonl ? parseJsonLines(text) : parseCsv(text);
}

export function parseJsonLines(text: string): BatchRow[] {
  const rows: BatchRow[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    try {
      const obj = JSON.parse(line) as unknown;
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) rows.push({ line: i + 1, id: undefined, problem: 'not a JSON object' });
      else rows.push({ line: i + 1, id: (obj as Record<string, unknown>).id, profile: (obj as Record<string, unknown>).profile });
    } catch {
      rows.push({ line: i + 1, id: undefined, problem: 'not valid JSON' });
    }
  });
  return rows;
}

/** A CSV record with the line it ends on (1-based). */
export interface CsvRecord { readonly record: string[]; readonly info: { readonly lines: number } }

/** Any CSV: quoting, whitespace trimmed around fields, empty lines skipped, a byte order mark dropped. */
export function csvRecords(text: string): CsvRecord[] {
  try {
    return parse(text, { bom: true, skip_empty_lines: true, relax_column_count: true, info: true, trim: true }) as unknown as CsvRecord[];
  } catch (err) {
    const e = err as { lines?: number; message: string };
    throw new UsageError(`batch CSV is malformed${e.lines ? ` at line ${e.lines}` : ''}: ${e.message.replace(/^Invalid.*?: /, '')}`, 'ERR_BATCH_INVALID');
  }
}

/** Nothing that quoting or trimming could change: the characters of ids and profile names, commas, and \n line ends. */
const PLAIN = /^[\w.:,\n-]*$/;

/**
 * The records of a CSV made of ids and profile names only (what a factory's
 * generator writes), split as they stand: the same records as csvRecords, about
 * fifty times faster on a large batch. Null for anything else (quotes, spaces, a
 * \r), which csvRecords reads.
 */
export function plainCsvRecords(text: string): CsvRecord[] | null {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  if (!PLAIN.test(body)) return null;
  const records: CsvRecord[] = [];
  body.split('\n').forEach((line, k) => { if (line) records.push({ record: line.split(','), info: { lines: k + 1 } }); });
  return records;
}

export function parseCsv(text: string): BatchRow[] {
  const records = plainCsvRecords(text) ?? csvRecords(text);
  const [header, ...body] = records;
  if (!header) return [];
  const columns = header.record.map((c) => c.toLowerCase());
  const idCol = columns.indexOf('id');
  const delimiter = otherDelimiter(columns);
  if (idCol < 0 && delimiter) {
    throw new UsageError(`batch CSV is separated by ${delimiter}, not commas (a spreadsheet saved in another locale?): save it as "CSV UTF-8 (comma delimited)"`, 'ERR_BATCH_INVALID');
  }
  if (idCol < 0) throw new UsageError(`batch CSV has no "id" column in its header row (found: ${columns.map(printable).join(', ') || 'nothing'})`, 'ERR_BATCH_INVALID');
  const profileCol = columns.indexOf('profile');
  return body.map(({ record, info }) => {
    if (record.length !== columns.length) return { line: info.lines, id: record[idCol], problem: `has ${record.length} field(s), the header has ${columns.length}` };
    return { line: info.lines, id: record[idCol], profile: profileCol >= 0 && record[profileCol] ? record[profileCol] : undefined };
  });
}
