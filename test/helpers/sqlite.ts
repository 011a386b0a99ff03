import type { Registry } from '../../registry/index.js';
import { SqliteRegistry } from '../../registry/sqlite/registry.js';
import type { SqliteStores } from '../../registry/sqlite/stores.js';

/** The better-sqlite3 connection under an SQLite registry, for tests that read the file's internals. */
export function sqliteOf(reg: Registry): SqliteStores {
  if (!(reg instanceof SqliteRegistry)) throw new Error(`registry ${reg.location} is not an SQLite file: this test reads SQLite internals`);
  return reg.sync;
}
