import type { OpenOptions, Registry, RegistryEngine } from './interface.js';
import { defaultDbPath, parseRegistryTarget, redactSecrets } from './location.js';
import { RegistryError } from '../errors/index.js';

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

/** The module path is a variable so that an engine is compiled and loaded only when present and asked for. */
async function loadEngine(module: string, target: string): Promise<RegistryEngine> {
  try {
    return ((await import(module)) as { engine: RegistryEngine }).engine;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new RegistryError('ERR_REGISTRY', `registry ${redactSecrets(target)}: this credbroker build has no engine for it`, { cause: err });
  }
}
