import { openDb, openDbReadOnly, defaultDbPath, asRegistryError, durably, type Db } from './db.js';
import { Devices } from './devices.js';
import { Profiles, DEFAULT_PROFILES } from './profiles.js';
import { IssuedTokens } from './tokens.js';
import { RefreshCredentials } from './refresh.js';
import { AuditLog } from './audit.js';
import { ChangeFeed } from './changes.js';
import { SigningKeys } from './keys.js';
import { SettingsStore, type Settings } from './settings.js';
import { RegistrySpace } from './space.js';
import { CredbrokerError, RegistryError } from '../errors/index.js';

export * from './ids.js';
export type { Device, DeviceStatus, DeviceFilter } from './devices.js';
export type { Profile } from './profiles.js';
export type { IssuedToken } from './tokens.js';
export type { RefreshRecord, RefreshState } from './refresh.js';
export type { AuditEvent, AuditQuery, Actor } from './audit.js';
export type { Change, ChangeKind } from './changes.js';
export type { SigningKeyRecord, SigningAlg } from './keys.js';
export type { Settings } from './settings.js';
export type { RegistryStats } from './space.js';
export { SCHEMA_VERSION } from './migrations.js';
export { defaultDbPath, asRegistryError };
export { DEFAULT_SETTINGS } from './settings.js';
export { DEFAULT_PROFILES } from './profiles.js';

/**
 * The SQLite registry: one file shared by the CLI (writer) and the broker
 * (reader, and writer of renewals). Each table family has its own store.
 *
 * @example
 * const reg = Registry.open('./data/credbroker.db');
 * reg.devices.require('pump-0001');
 * reg.close();
 */
export class Registry {
  readonly db: Db;
  readonly path: string;
  readonly devices: Devices;
  readonly profiles: Profiles;
  readonly tokens: IssuedTokens;
  readonly refresh: RefreshCredentials;
  readonly audit: AuditLog;
  readonly changes: ChangeFeed;
  readonly keys: SigningKeys;
  readonly settingsStore: SettingsStore;
  readonly space: RegistrySpace;

  private constructor(db: Db, path: string) {
    this.db = db;
    this.path = path;
    this.devices = new Devices(db);
    this.profiles = new Profiles(db);
    this.tokens = new IssuedTokens(db);
    this.refresh = new RefreshCredentials(db);
    this.audit = new AuditLog(db);
    this.changes = new ChangeFeed(db);
    this.keys = new SigningKeys(db);
    this.settingsStore = new SettingsStore(db);
    this.space = new RegistrySpace(db);
  }

  /**
   * Opens the registry, creating and seeding it on first use (default settings and
   * the `sensor` and `observer` profiles), so the embedded default needs no set-up.
   * With `readonly`, an existing file is opened for reading only (nothing is seeded);
   * a file with an older schema is still opened for writing, to migrate it.
   */
  static open(path = defaultDbPath(), init: Partial<Settings> = {}, opts: { readonly?: boolean } = {}): Registry {
    let db: Db;
    try {
      const ro = opts.readonly ? openDbReadOnly(path) : null;
      if (ro) return new Registry(ro, path);
      db = openDb(path);
    } catch (err) {
      if (err instanceof CredbrokerError) throw err;
      const mapped = asRegistryError(err, path);
      if (mapped instanceof CredbrokerError) throw mapped;
      throw new RegistryError('ERR_REGISTRY', `cannot open registry ${path}: ${(err as Error).message}`, { cause: err });
    }
    const reg = new Registry(db, path);
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

  /**
   * Copies the WAL into the main file and truncates the WAL to zero bytes, so
   * that content already overwritten in place (a retired private key, zeroed by
   * secure_delete) is gone from both files. False when a reader kept part of the
   * WAL; the next checkpoint (at the latest when the last connection closes) takes it.
   */
  checkpoint(): boolean {
    const [r] = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    return r?.busy === 0;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
