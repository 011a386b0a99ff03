import type { OpenOptions, Registry, RegistryEngine } from './interface.js';
import { defaultDbPath, parseRegistryTarget, redactSecrets } from './location.js';
import { RegistryError, UsageError } from '../errors/index.js';

export * from './ids.js';
export type * from './types.js';
export type * from './interface.js';
export { DEFAULT_SETTINGS, DEFAULT_PROFILES } from './defaults.js';
export { grantStatus } from './grant-status.js';
export { BULK_TABLES, type BulkTableName, type BulkRow, type BulkPage } from './bulk.js';
export { onRegistryWarning } from './warnings.js';
export { parseRegistryTarget, localRegistryPath, defaultDbPath, redactSecrets, type RegistryTarget } from './location.js';

/**
 * Opens the registry at `target` — a file path or `sqlite:PATH` (SQLite), or
 * `postgres://USER@HOST:PORT/DB` (PostgreSQL) — creating and seeding it on first
 * use unless `opts.readonly`. Only the engine asked for is loaded, with its
 * driver: a SQLite user never loads node-postgres, nor a PostgreSQL user better-sqlite3.
 */
export async function openRegistry(target: string = defaultDbPath(), opts: OpenOptions = {}): Promise<Registry> {
  const where = parseRegistryTarget(target);
  const engine = where.engine === 'postgres' ? await loadEngine('./postgres/index.js', target) : await loadEngine('./sqlite/index.js', target);
  return engine.open(where.engine === 'postgres' ? where.url : where.path, opts);
}

/**
 * `registry backup`: a consistent copy of a SQLite registry into a new 0600 file
 * (registry/sqlite/backup.ts). A PostgreSQL registry is backed up with the
 * database's own tools: refused with how.
 * @throws UsageError
 */
export async function backupRegistry(target: string, to: string): Promise<void> {
  const where = parseRegistryTarget(target);
  if (where.engine === 'postgres') {
    // Runnable as printed, without the password (pg_dump reads ~/.pgpass or PGPASSWORD, as credbroker does).
    const url = new URL(where.url);
    url.password = '';
    throw new UsageError(`registry backup copies SQLite registry files; back up a PostgreSQL registry with pg_dump, keeping the dump private: (umask 077; pg_dump --format=custom --file=${to} "${redactSecrets(url.href)}")`);
  }
  const { backupFile } = await import('./sqlite/backup.js');
  await backupFile(where.path, to);
}

/** The module path is a variable so that an engine is compiled and loaded only when present and asked for. */
async function loadEngine(module: string, target: string): Promise<RegistryEngine> {
  try {
    return ((await import(module)) as { engine: RegistryEngine }).engine;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new RegistryError('ERR_REGISTRY', `registry ${redactSecrets(target)}: this credbroker build has no engine for it`, { cause: err });
  }
}
