import { BULK_TABLES, type BulkPage, type BulkRow, type BulkTableName } from '../bulk.js';
import type { BulkStore } from '../interface.js';
import { copyIn } from './copy.js';
import type { Sql } from './pool.js';

/** The identity column that numbers a table's rows as they were inserted. */
const INSERTION_KEY: Partial<Record<BulkTableName, string>> = { refresh_credentials: 'n', audit: 'id' };

const keyOf = (table: BulkTableName): readonly string[] => {
  const { key } = BULK_TABLES[table];
  return key === 'insertion' ? [INSERTION_KEY[table]!] : key;
};

/** Whole tables page by page, for `registry copy` (registry/bulk.ts): keyset-paged reads, COPY writes. */
export class PgBulk implements BulkStore {
  constructor(private readonly sql: Sql) {}

  async page(table: BulkTableName, now: number, after: unknown, limit: number): Promise<BulkPage> {
    const spec: { columns: readonly string[]; liveBy?: string } = BULK_TABLES[table];
    const key = keyOf(table);
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown) => `$${args.push(v)}`;
    if (spec.liveBy) where.push(`${spec.liveBy} > ${arg(now)}`);
    if (after !== null) where.push(`(${key.join(', ')}) > (${(after as unknown[]).map(arg).join(', ')})`);
    const rows = await this.sql.rows<Record<string, unknown>>(
      `SELECT ${spec.columns.join(', ')}, ${key.map((k, i) => `${k} AS _k${i}`).join(', ')} FROM ${table}
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${key.join(', ')} LIMIT ${arg(limit)}`, args);
    const last = rows.length === limit ? key.map((_, i) => rows[rows.length - 1]![`_k${i}`]) : null;
    return { rows: rows.map((r) => spec.columns.map((c) => r[c])), next: last };
  }

  async write(table: BulkTableName, rows: readonly BulkRow[]): Promise<void> {
    await copyIn(await this.sql.connection('a bulk write'), table, BULK_TABLES[table].columns, rows);
  }

  async clear(table: BulkTableName): Promise<void> {
    await this.sql.run(`DELETE FROM ${table}`);
  }
}
