import Database from 'better-sqlite3';
import { makeDirs } from '../../util/make-dirs.js';
import { closeSync, openSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { RegistryError } from '../../errors/index.js';
import { checkSchemaVersion, migrate } from './migrations.js';
import { SCHEMA_VERSION } from '../migration-plan.js';
import { BUSY_TIMEOUT_MS } from './errors.js';

export type Db = Database.Database;

const WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024;

/**
 * WAL with NORMAL: a commit is fsynced at the next checkpoint, not at once, so a
 * power loss may take the last commits. Right for renewals and audit rows (a
 * commit on the broker's main thread would otherwise wait on the disk); wrong for
 * a revocation, which a durable transaction commits with FULL (registry.ts).
 */
export const EVERYDAY_SYNC = 'NORMAL';

/**
 * Creates the file with 0600 before SQLite creates it with 0644, and never opens
 * one that exists: closing any descriptor of a file drops every POSIX lock this
 * process holds on it, including the SQLite connections' own. Another process
 * could then take the file as unused, checkpoint and delete the WAL and shared
 * memory under them (seen: SQLITE_IOERR_SHORT_READ, with a broker and a second
 * connection in one process).
 */
function createPrivate(file: string): void {
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** SQLite answers a folder with SQLITE_IOERR_READ or SQLITE_CANTOPEN: say what is wrong instead. */
function refuseFolder(file: string): void {
  let folder = false;
  try {
    folder = statSync(file).isDirectory();
  } catch {
    return; // not there (yet): opening it says what is wrong
  }
  if (folder) throw new RegistryError('ERR_REGISTRY', `registry ${file} is a folder, not a registry file: give the file in it, e.g. --db ${join(file, 'credbroker.db')}`);
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
  refuseFolder(file);
  makeDirs(dirname(file));
  createPrivate(file);
  const db = new Database(file);
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    checkSchemaVersion(db);
    // Before WAL: only a file with no tables takes auto_vacuum at once; an existing
    // one is converted by migrate's one-time VACUUM.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${EVERYDAY_SYNC}`);
    // Deleted and overwritten content is zeroed, not left in free space: a retired
    // private key must not outlive its wiping in the file's bytes.
    db.pragma('secure_delete = ON');
    // A checkpoint that resets the WAL also truncates it to this size: one write
    // burst (a batch, a vacuum) must not leave a WAL file of its size for good.
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
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
  refuseFolder(resolve(path));
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
