import { BULK_TABLES, type BulkPage, type BulkRow, type BulkTableName } from '../bulk.js';
import type { Db } from './db.js';

const keyOf = (table: BulkTableName): readonly string[] => {
  const { key } = BULK_TABLES[table];
  return key === 'insertion' ? ['rowid'] : key;
};

/** Whole tables page by page, for `registry copy` (registry/bulk.ts); rows come as arrays, keyset-paged. */
export class Bulk {
  constructor(private readonly db: Db) {}

  page(table: BulkTableName, now: number, after: unknown, limit: number): BulkPage {
    const spec: { columns: readonly string[]; liveBy?: string } = BULK_TABLES[table];
    const key = keyOf(table);
    const where: string[] = [];
    const args: unknown[] = [];
    if (spec.liveBy) { where.push(`${spec.liveBy} > ?`); args.push(now); }
    if (after !== null) { where.push(`(${key.join(', ')}) > (${key.map(() => '?').join(', ')})`); args.push(...(after as unknown[])); }
    const rows = this.db.prepare(
      `SELECT ${[...spec.columns, ...key].join(', ')} FROM ${table} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${key.join(', ')} LIMIT ?`,
    ).raw().all(...args, limit) as unknown[][];
    const n = spec.columns.length;
    const last = rows.length === limit ? rows[rows.length - 1]!.slice(n) : null;
    return { rows: rows.map((r) => r.slice(0, n)), next: last };
  }

  write(table: BulkTableName, rows: readonly BulkRow[]): void {
    const { columns } = BULK_TABLES[table];
    const insert = this.db.prepare(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
    // PostgreSQL's booleans: SQLite stores them as 0/1.
    for (const row of rows) insert.run(row.map((v) => (typeof v === 'boolean' ? Number(v) : v)));
  }

  clear(table: BulkTableName): void {
    this.db.prepare(`DELETE FROM ${table}`).run();
  }
}
