import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { checkSchemaVersion, migrate, SCHEMA_VERSION } from './migrations.js';
import { BUSY_TIMEOUT_MS } from './sqlite-errors.js';

export { asRegistryError, BUSY_TIMEOUT_MS } from './sqlite-errors.js';

export type Db = Database.Database;

/** Default registry path; `--db` and `CREDBROKER_DB` override it. */
export function defaultDbPath(): string {
  return process.env.CREDBROKER_DB || './data/credbroker.db';
}

/**
 * Opens (creating on first use) the registry file with owner-only modes: the
 * folder 0700 and the file 0600, because it holds the private signing keys.
 * WAL lets the broker read while the CLI writes; the busy timeout makes a writer
 * wait for another instead of failing with SQLITE_BUSY.
 *
 * The schema version is checked before any pragma that could write: a file from
 * a newer credbroker is refused without being touched.
 */
export function openDb(path: string): Db {
  const file = resolve(path);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  closeSync(openSync(file, 'a', 0o600)); // create with 0600 before SQLite creates it with 0644
  const db = new Database(file);
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    checkSchemaVersion(db);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
  } catch (err) {
    if (db.open) db.close();
    throw err;
  }
  return db;
}

/**
 * Opens an existing registry read-only, for commands that only read: they work on a
 * file the operator may only read (another user's registry, a backup copy) and can
 * never write to it by accident. Returns null when the file has an older schema:
 * it must be migrated first, which only a writable connection can do.
 */
export function openDbReadOnly(path: string): Db | null {
  const db = new Database(resolve(path), { readonly: true, fileMustExist: true });
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (checkSchemaVersion(db) < SCHEMA_VERSION) {
      db.close();
      return null;
    }
  } catch (err) {
    if (db.open) db.close();
    throw err;
  }
  return db;
}
