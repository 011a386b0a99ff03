import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/** A value as COPY's text format holds it: `\N` for null, `t`/`f`, and the four characters it escapes. */
function field(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (typeof v === 'number') return String(v);
  return String(v).replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
}

/** Rows of text per write: large enough that a chunk costs a few writes, small enough to bound the buffer. */
const ROWS_PER_WRITE = 2_000;

function* lines(rows: readonly (readonly unknown[])[]): Generator<string> {
  for (let i = 0; i < rows.length; i += ROWS_PER_WRITE) {
    let text = '';
    for (const row of rows.slice(i, i + ROWS_PER_WRITE)) text += `${row.map(field).join('\t')}\n`;
    yield text;
  }
}

/**
 * Loads rows into `table` with one `COPY … FROM STDIN` on the transaction's
 * connection: one statement and no per-row round trip, whatever the count.
 * `columns` are trusted names (never user input); values go through COPY's text escaping.
 */
export async function copyIn(client: pg.ClientBase, table: string, columns: readonly string[], rows: readonly (readonly unknown[])[]): Promise<void> {
  if (rows.length === 0) return;
  const stream = client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN`));
  await pipeline(Readable.from(lines(rows)), stream);
}
