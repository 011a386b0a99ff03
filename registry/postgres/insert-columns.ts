import { RegistryError } from '../../errors/index.js';
import type { Sql } from './pool.js';

/** The SQL types a column array is sent as. */
export type ColumnType = 'text' | 'bigint' | 'boolean';

const NEEDS_ESCAPE = /["\\]/;

/**
 * A column as one array literal (`{"a","b\"c",NULL}`), built here rather than by
 * node-postgres, which runs two replaces and a type dispatch per element: a
 * tenth of the main thread's time per provisioned device (measured).
 */
export function arrayLiteral(type: ColumnType, values: readonly unknown[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ',';
    if (v === null || v === undefined) out += 'NULL';
    else if (type === 'bigint') out += Number.isSafeInteger(v) ? String(v) : badValue(type, v);
    else if (type === 'boolean') out += typeof v === 'boolean' ? (v ? 't' : 'f') : badValue(type, v);
    else {
      const s = String(v);
      out += `"${NEEDS_ESCAPE.test(s) ? s.replace(/["\\]/g, '\\$&') : s}"`;
    }
  }
  return `${out}}`;
}

function badValue(type: ColumnType, v: unknown): never {
  throw new RegistryError('ERR_REGISTRY', `a ${type} column was given ${typeof v === 'number' ? String(v) : typeof v}`);
}

/**
 * Rows into `table` as one `INSERT … SELECT FROM unnest($1::text[], …)`: one
 * parameter per column, whatever the row count. Unlike COPY (a round trip for the
 * server's CopyInResponse, another for its end, and pipelining off), it is an
 * ordinary statement: in a transaction it is sent as a pipelined write, so a
 * chunk's inserts travel with its COMMIT and the server works on them while the
 * caller goes on. Same server work per row as COPY (measured: the indexes and
 * foreign-key checks are most of it). Failures (a duplicate key) fail the
 * transaction at its commit, with nothing of it kept.
 * `table` and the column names are trusted (never user input); values are parameters.
 */
export function insertColumns(
  sql: Sql, what: string, table: string, columns: Readonly<Record<string, ColumnType>>, values: readonly (readonly unknown[])[],
): Promise<void> {
  if (!sql.inTransaction) return Promise.reject(new RegistryError('ERR_REGISTRY', `${what} must run in a registry transaction`));
  const names = Object.keys(columns);
  if (values.length !== names.length) throw new Error(`insertColumns: ${values.length} value columns for ${names.length} names`);
  const types = names.map((n) => columns[n]!);
  return sql.write(
    `INSERT INTO ${table} (${names.join(', ')}) SELECT * FROM unnest(${types.map((t, j) => `$${j + 1}::${t}[]`).join(', ')})`,
    values.map((column, j) => arrayLiteral(types[j]!, column)),
  );
}
