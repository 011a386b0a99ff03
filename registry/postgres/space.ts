import type { SpaceStore } from '../interface.js';
import type { RegistryStats, ScrubReport } from '../types.js';
import type { Sql } from './pool.js';

const PAGE_SIZE = 8192;

interface TableRow { t: string; bytes: number; dead: number }

/**
 * The database's size and what fills it, as the server counts it. PostgreSQL
 * reclaims dead rows itself (autovacuum), so `reclaim` has nothing to do.
 */
export class PgSpace implements SpaceStore {
  constructor(private readonly sql: Sql) {}

  async fileSizes(): Promise<{ fileBytes: number; walBytes: number }> {
    const [r] = await this.sql.rows<{ b: number }>('SELECT pg_database_size(current_database()) AS b');
    return { fileBytes: r?.b ?? 0, walBytes: 0 };
  }

  async stats(): Promise<RegistryStats> {
    // n_dead_tup: the server's own count, kept up to date by every write and VACUUM (no table is read for it).
    const tables = await this.sql.rows<TableRow>(
      `SELECT t.tablename AS t, pg_total_relation_size(format('%I.%I', t.schemaname, t.tablename)) AS bytes, coalesce(s.n_dead_tup, 0) AS dead
         FROM pg_tables t LEFT JOIN pg_stat_user_tables s ON s.schemaname = t.schemaname AND s.relname = t.tablename
        WHERE t.schemaname = current_schema() AND t.tablename <> 'credbroker_schema' ORDER BY t.tablename`);
    const rows: Record<string, number> = {};
    const tableBytes: Record<string, number> = {};
    for (const { t: name, bytes } of tables) {
      rows[name] = (await this.sql.rows<{ n: number }>(`SELECT count(*) AS n FROM "${name}"`))[0]?.n ?? 0;
      tableBytes[name] = Number(bytes);
    }
    const { fileBytes, walBytes } = await this.fileSizes();
    const [av] = await this.sql.rows<{ autovacuum: string }>('SHOW autovacuum');
    return {
      fileBytes, walBytes, pageSize: PAGE_SIZE, pages: Math.ceil(fileBytes / PAGE_SIZE), freePages: null, autoVacuum: null,
      deadRows: tables.reduce((n, r) => n + Number(r.dead), 0),
      upkeep: `dead rows reclaimed by the server's autovacuum (${av?.autovacuum ?? 'unknown'}); the write-ahead log is the server's`,
      rows, tableBytes,
    };
  }

  async reclaim(): Promise<number> {
    return 0;
  }

  /**
   * A retired key's UPDATE leaves the old row version (with the private half) in
   * the table until vacuumed: VACUUM it now. A transaction that started before
   * the UPDATE may still see that version, and VACUUM then keeps it: the server's
   * count of dead rows left says so (autovacuum removes it once that transaction
   * ends). Copies already in the server's WAL archive or base backups are the
   * database operator's to expire.
   */
  async scrub(): Promise<ScrubReport> {
    await this.sql.run('VACUUM signing_keys');
    const [r] = await this.sql.rows<{ dead: number }>(
      "SELECT n_dead_tup AS dead FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'signing_keys'");
    const dead = Number(r?.dead ?? 0);
    return dead === 0
      ? { complete: true, detail: 'VACUUM signing_keys: no dead row version left' }
      : { complete: false, detail: `VACUUM signing_keys: ${dead} dead row version(s) kept for a transaction that still sees them; autovacuum removes them after it ends` };
  }
}
