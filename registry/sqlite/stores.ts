import { openDb, openDbReadOnly, type Db } from './db.js';
import { asRegistryError } from './errors.js';
import { Devices } from './devices.js';
import { Profiles } from './profiles.js';
import { IssuedTokens } from './tokens.js';
import { Grants } from './grants.js';
import { RefreshCredentials } from './refresh.js';
import { AuditLog } from './audit.js';
import { ChangeFeed } from './changes.js';
import { SigningKeys } from './keys.js';
import { SettingsStore } from './settings.js';
import { RegistrySpace } from './space.js';
import { Claims } from './claims.js';
import { Operators } from './operators.js';
import { Bulk } from './bulk.js';
import { DEFAULT_PROFILES } from '../defaults.js';
import type { Settings } from '../types.js';
import { CredbrokerError, RegistryError } from '../../errors/index.js';

/**
 * One better-sqlite3 connection to a registry file and its synchronous stores,
 * one per table family: what the SQLite engine (registry.ts) runs behind the
 * async contract.
 */
export class SqliteStores {
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
  readonly operators: Operators;
  readonly bulk: Bulk;

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
    this.operators = new Operators(db);
    this.bulk = new Bulk(db);
  }

  /**
   * Opens the registry, creating and seeding it on first use (default settings and
   * the `sensor` and `observer` profiles), so the embedded default needs no set-up.
   * With `readonly`, an existing file is opened for reading only (nothing is seeded);
   * a file with an older schema is still opened for writing, to migrate it.
   */
  static open(path: string, init: Partial<Settings> = {}, opts: { readonly?: boolean } = {}): SqliteStores {
    let db: Db;
    try {
      const ro = opts.readonly ? openDbReadOnly(path) : null;
      if (ro) return new SqliteStores(ro, path);
      db = openDb(path);
    } catch (err) {
      if (err instanceof CredbrokerError) throw err;
      const mapped = asRegistryError(err, path);
      if (mapped instanceof CredbrokerError) throw mapped;
      throw new RegistryError('ERR_REGISTRY', `cannot open registry ${path}: ${(err as Error).message}`, { cause: err });
    }
    const reg = new SqliteStores(db, path);
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
   * Runs `fn` in one write transaction taken with BEGIN IMMEDIATE, so a second
   * writer waits on the busy timeout instead of failing half-way with SQLITE_BUSY.
   */
  write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
