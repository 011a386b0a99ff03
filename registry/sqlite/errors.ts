import { RegistryError, isCredbrokerError } from '../../errors/index.js';

/** How long a writer waits for another writer's lock before giving up (ms). */
export const BUSY_TIMEOUT_MS = 10_000;

/**
 * Turns a better-sqlite3 failure into a RegistryError with a message an operator
 * can act on (a locked registry, a full disk, a file that is not a registry).
 * Anything else is returned unchanged.
 */
export function asRegistryError(err: unknown, path?: string): unknown {
  if (isCredbrokerError(err)) return err;
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.name !== 'SqliteError' || typeof e.code !== 'string') return err;
  const where = path ? `registry ${path}` : 'registry';
  const code = e.code;
  let message: string;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    message = `${where} is locked by another writer (waited ${BUSY_TIMEOUT_MS / 1000} s); nothing was changed, try again`;
  } else if (code === 'SQLITE_FULL') {
    message = `${where}: the disk is full; the last transaction was rolled back`;
  } else if (code === 'SQLITE_NOTADB') {
    message = `${path ?? 'the file'} is not a credbroker registry (not an SQLite database)`;
  } else if (code === 'SQLITE_READONLY_DIRECTORY') {
    // Even a reader of a WAL-mode file needs its -shm file, created next to it on first open.
    message = `${where} cannot be opened: its folder is read-only, and SQLite must create the registry's -shm file there to read it (WAL mode); make the folder writable for this user, or read a copy`;
  } else if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM')) {
    message = `${where} cannot be written (${code}): check the file and folder permissions`;
  } else if (code.startsWith('SQLITE_CORRUPT')) {
    message = `${where} is corrupt (${code}): restore it from a backup`;
  } else {
    message = `${where}: ${code}: ${String(e.message ?? '').split('\n')[0]}`;
  }
  return new RegistryError('ERR_REGISTRY', message, { cause: err });
}
