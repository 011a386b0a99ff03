import { openDb, openDbReadOnly, defaultDbPath, asRegistryError, durably, type Db } from './db.js';
import { Devices } from './devices.js';
import { Profiles, DEFAULT_PROFILES } from './profiles.js';
import { IssuedTokens } from './tokens.js';
import { Grants } from './grants.js';
import { RefreshCredentials } from './refresh.js';
import { AuditLog } from './audit.js';
import { ChangeFeed } from './changes.js';
import { SigningKeys } from './keys.js';
import { SettingsStore, type Settings } from './settings.js';
import { RegistrySpace } from './space.js';
import { Claims } from './claims.js';
import { CredbrokerError, RegistryError } from '../errors/index.js';

import type { OpenOptions, Registry as AsyncRegistry, RegistryEngine } from './interface.js';
import { parseRegistryTarget, redactSecrets } from './location.js';
import { SqliteRegistry } from './sqlite/registry.js';

export * from './ids.js';
export type * from './types.js';
export type * from './interface.js';
export { SCHEMA_VERSION } from './migrations.js';
export { defaultDbPath, asRegistryError };
export { DEFAULT_SETTINGS, DEFAULT_PROFILES } from './defaults.js';
export { grantStatus } from './grants.js';
export { onRegistryWarning } from './warnings.js';
export { parseRegistryTarget, localRegistryPath, redactSecrets, type RegistryTarget } from './location.js';

/**
 * Opens the registry at `target` — a file path or `sqlite:PATH` (SQLite), or
 * `postgres://USER@HOST:PORT/DB` (PostgreSQL) — creating and seeding it on first
 * use unless `opts.readonly`. The engine is loaded on demand: a SQLite user never
 * loads the PostgreSQL driver.
 */
export async function openRegistry(target: string = defaultDbPath(), opts: OpenOptions = {}): Promise<AsyncRegistry> {
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

/**
 * The SQLite registry's synchronous form: one file shared by the CLI (writer) and
 * the broker (reader, and writer of renewals), one store per table family.
 * Being replaced by the async `Registry` contract (`openRegistry`): callers moved
 * onto it reach this connection through `api`; the SQLite engine wraps this class.
 *
 * @example
 * const reg = SyncRegistry.open('./data/credbroker.db');
 * reg.devices.require('pump-0001');
 * reg.close();
 */
export class SyncRegistry {
  readonly db: Db;
  readonly path: string;
  readonly devices: Devices;
  readonly profiles: Profiles;
  readonly tokens: IssuedTokens;
  readonly grants: Grants;
  readonly refresh: RefreshCredentials;
  readonly audit: AuditLog;
  readonly changes: ChangeFeed;
  readonly keys: SigningKeys;
  readonly settingsStore: SettingsStore;
  readonly space: RegistrySpace;
  readonly claims: Claims;
  private asyncView: AsyncRegistry | null = null;

  private constructor(db: Db, path: string) {
    this.db = db;
    this.path = path;
    this.devices = new Devices(db);
    this.profiles = new Profiles(db);
    this.tokens = new IssuedTokens(db);
    this.grants = new Grants(db);
    this.refresh = new RefreshCredentials(db);
    this.audit = new AuditLog(db);
    this.changes = new ChangeFeed(db);
    this.keys = new SigningKeys(db);
    this.settingsStore = new SettingsStore(db);
    this.space = new RegistrySpace(db);
    this.claims = new Claims(db);
  }

  /**
   * Opens the registry, creating and seeding it on first use (default settings and
   * the `sensor` and `observer` profiles), so the embedded default needs no set-up.
   * With `readonly`, an existing file is opened for reading only (nothing is seeded);
   * a file with an older schema is still opened for writing, to migrate it.
   */
  static open(path = defaultDbPath(), init: Partial<Settings> = {}, opts: { readonly?: boolean } = {}): SyncRegistry {
    let db: Db;
    try {
      const ro = opts.readonly ? openDbReadOnly(path) : null;
      if (ro) return new SyncRegistry(ro, path);
      db = openDb(path);
    } catch (err) {
      if (err instanceof CredbrokerError) throw err;
      const mapped = asRegistryError(err, path);
      if (mapped instanceof CredbrokerError) throw mapped;
      throw new RegistryError('ERR_REGISTRY', `cannot open registry ${path}: ${(err as Error).message}`, { cause: err });
    }
    const reg = new SyncRegistry(db, path);
    try {
      reg.write(() => {
        reg.settingsStore.seed(init);
        if (reg.profiles.list().length === 0) for (const p of DEFAULT_PROFILES) reg.profiles.set(p);
      });
    } catch (err) {
      reg.close();
      throw asRegistryError(err, path);
    }
    return reg;
  }

  /**
   * The same connection behind the async contract, for callers already moved
   * onto it while others still use this class (the migration to the async registry).
   */
  get api(): AsyncRegistry {
    return this.asyncView ??= new SqliteRegistry(this);
  }

  settings(): Settings {
    return this.settingsStore.read();
  }

  /**
   * Runs `fn` in one write transaction taken with BEGIN IMMEDIATE, so a second
   * writer waits on the busy timeout instead of failing half-way with SQLITE_BUSY.
   */
  write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * `write`, fsynced before it returns (synchronous=FULL): for what must survive a
   * power loss once reported done — a revocation, a key killed by `keys rotate --now`.
   */
  writeDurably<T>(fn: () => T): T {
    return durably(this.db, () => this.write(fn));
  }

  /** See RegistrySpace.scrub. */
  checkpoint(): boolean {
    return this.space.scrub();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
