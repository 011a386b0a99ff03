import { existsSync } from 'node:fs';
import { localRegistryPath } from '../../registry/index.js';

export interface DeviceCounter {
  /** Devices committed now, or -1 while the registry is not there or not migrated yet. */
  count(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Counts devices from outside while a batch runs, on either engine: a read-only
 * SQLite connection per call, or one PostgreSQL connection for every poll (a
 * connection per poll would cost more than the poll).
 */
export async function deviceCounter(db: string): Promise<DeviceCounter> {
  const file = localRegistryPath(db);
  if (file !== null) {
    const { default: Database } = await import('better-sqlite3');
    const count = async () => {
      if (!existsSync(file)) return -1;
      let conn: InstanceType<typeof Database> | undefined;
      try {
        conn = new Database(file, { readonly: true, fileMustExist: true });
        conn.pragma('busy_timeout = 1000');
        return conn.prepare('SELECT count(*) AS n FROM devices').pluck().get() as number;
      } catch {
        return -1;
      } finally {
        conn?.close();
      }
    };
    return { count, close: async () => {} };
  }
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: db });
  await c.connect();
  return {
    count: async () => Number((await c.query('SELECT count(*) AS n FROM devices').catch(() => ({ rows: [{ n: -1 }] }))).rows[0].n),
    close: () => c.end(),
  };
}
