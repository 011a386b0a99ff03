import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * Device count seen by a read-only connection, or -1 while the registry is not there
 * or not migrated yet: for tests that watch a batch from outside while it runs.
 */
export function deviceCount(db: string): number {
  if (!existsSync(db)) return -1;
  let conn: Database.Database | undefined;
  try {
    conn = new Database(db, { readonly: true, fileMustExist: true });
    conn.pragma('busy_timeout = 1000');
    return conn.prepare('SELECT count(*) AS n FROM devices').pluck().get() as number;
  } catch {
    return -1;
  } finally {
    conn?.close();
  }
}
