import Database from 'better-sqlite3';
import { closeSync, openSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { makeDirs } from '../../util/make-dirs.js';
import { UsageError } from '../../errors/index.js';
import { asRegistryError, BUSY_TIMEOUT_MS } from './errors.js';

/**
 * A consistent copy of a registry file taken with SQLite's online backup (the
 * broker may keep writing), into a new file (in a 0700 folder when it makes one) created 0600 before any byte is
 * written: it holds the private signing keys. The copy is switched out of WAL mode,
 * so that opening it read-only later creates no -shm or -wal file beside it.
 * @throws UsageError when `to` exists; RegistryError when the source cannot be read.
 */
export async function backupFile(from: string, to: string): Promise<void> {
  const target = resolve(to);
  try {
    makeDirs(dirname(target));
    closeSync(openSync(target, 'wx', 0o600));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UsageError(`${to} already exists: a backup never overwrites a file (move it away, or give another --to)`);
    throw new UsageError(`cannot create ${to}: ${code ?? (err as Error).message}`);
  }
  let done = false;
  try {
    const source = new Database(resolve(from), { readonly: true, fileMustExist: true });
    try {
      source.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      await source.backup(target);
    } finally {
      source.close();
    }
    const copy = new Database(target);
    try {
      copy.pragma('journal_mode = DELETE');
    } finally {
      copy.close();
    }
    done = true;
  } catch (err) {
    throw asRegistryError(err, from);
  } finally {
    if (!done) for (const f of [target, `${target}-wal`, `${target}-shm`, `${target}-journal`]) rmSync(f, { force: true });
  }
}
