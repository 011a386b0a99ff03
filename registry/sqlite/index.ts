import type { OpenOptions, Registry, RegistryEngine } from '../interface.js';
import { SqliteStores } from './stores.js';
import { SqliteRegistry } from './registry.js';

/** The SQLite engine: `target` is the file's path. */
export const engine: RegistryEngine = {
  async open(target: string, opts: OpenOptions): Promise<Registry> {
    return new SqliteRegistry(SqliteStores.open(target, opts.init ?? {}, { readonly: opts.readonly }));
  },
};
