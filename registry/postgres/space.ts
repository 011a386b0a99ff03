import type { SpaceStore } from '../interface.js';
import type { RegistryStats } from '../types.js';
import type { Sql } from './pool.js';

const PAGE_SIZE = 8192;

/**
 * The database's size and what fills it. PostgreSQL reclaims dead rows itself
 * (autovacuum), so `reclaim` has nothing to do and the stats report no free pages.
 */
export class PgSpace implements SpaceStore {
  constructor(private readonly sql: Sql) {}

  async fileSizes(): Promise<{ fileBytes: number; walBytes: number }> {
    const [r] = await this.sql.rows<{ b: number }>('SELECT pg_database_size(current_database()) AS b');
    return { fileBytes: r?.b ?? 0, walBytes: 0 };
  }

  async stats(): Promise<RegistryStats> {
    const tables = await this.sql.rows<{ t: string }>(
      `SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'credbroker_schema' ORDER BY tablename`);
    const rows: Record<string, number> = {};
    for (const { t: name } of tables) {
      rows[name] = (await this.sql.rows<{ n: number }>(`SELECT count(*) AS n FROM "${name}"`))[0]?.n ?? 0;
    }
    const { fileBytes, walBytes } = await this.fileSizes();
    const [av] = await this.sql.rows<{ autovacuum: string }>('SHOW autovacuum');
    return {
      fileBytes, walBytes, pageSize: PAGE_SIZE, pages: Math.ceil(fileBytes / PAGE_SIZE), freePages: 0, autoVacuum: null,
      upkeep: `dead rows reclaimed by the server's autovacuum (${av?.autovacuum ?? 'unknown'}); the write-ahead log is the server's`,
      rows,
    };
  }

  async reclaim(): Promise<number> {
    return 0;
  }

  /**
   * A retired key's UPDATE leaves the old row version (with the private half) in
   * the table until vacuumed: VACUUM it now. Copies already in the server's WAL
   * archive or base backups are the database operator's to expire.
   */
  async scrub(): Promise<boolean> {
    await this.sql.run('VACUUM signing_keys');
    return true;
  }
}
