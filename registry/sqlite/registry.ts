import type { SqliteStores } from './stores.js';
import type {
  AuditStore, BulkStore, ChangeFeed, ChangeFollower, ChangeStore, DeviceStore, FollowOptions, GrantStore, ClaimStore, KeyStore, OperatorStore, ProfileStore, RefreshStore,
  Registry, RegistryTx, SettingsStore, SpaceStore, Stores, TokenStore, TransactionOptions,
} from '../interface.js';
import type { Change } from '../types.js';
import { resolve } from 'node:path';
import { asRegistryError } from './errors.js';
import { EVERYDAY_SYNC } from './db.js';
import { RegistryError } from '../../errors/index.js';

/** A store's methods, each returning a Promise of what the synchronous one returns. */
type Asyncified<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<R> : never };
type Runner = <R>(fn: () => R) => Promise<R>;

/**
 * Wraps a synchronous store: each call runs through `run`. Assigning the result to
 * the store's interface (below) is what checks that the SQLite store covers it.
 */
function asyncStore<T extends object>(store: T, run: Runner): Asyncified<T> {
  const out: Record<string, unknown> = {};
  for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(store))) {
    const method = (store as Record<string, unknown>)[name];
    if (name === 'constructor' || typeof method !== 'function') continue;
    out[name] = (...args: unknown[]) => run(() => (method as (...a: unknown[]) => unknown).apply(store, args));
  }
  return out as Asyncified<T>;
}

interface StoreSet {
  devices: DeviceStore; profiles: ProfileStore; tokens: TokenStore; grants: GrantStore; claims: ClaimStore; refresh: RefreshStore;
  audit: AuditStore; changes: ChangeStore; keys: KeyStore; settings: SettingsStore; operators: OperatorStore; bulk: BulkStore;
}

function storesOf(sync: SqliteStores, run: Runner): StoreSet {
  return {
    devices: asyncStore(sync.devices, run),
    profiles: asyncStore(sync.profiles, run),
    tokens: asyncStore(sync.tokens, run),
    grants: asyncStore(sync.grants, run),
    claims: asyncStore(sync.claims, run),
    refresh: asyncStore(sync.refresh, run),
    audit: asyncStore(sync.audit, run),
    changes: asyncStore(sync.changes, run),
    keys: asyncStore(sync.keys, run),
    settings: asyncStore(sync.settingsStore, run),
    operators: asyncStore(sync.operators, run),
    bulk: asyncStore(sync.bulk, run),
  };
}

/**
 * One per registry file in this process, shared by every connection to it. Two
 * connections of one process must not wait on each other's write lock: the
 * busy wait is synchronous, so the transaction holding the lock could never
 * finish its `fn` (a deadlock until the busy timeout). They take turns here instead.
 */
interface Gate { txDone: Promise<void> | null; users: number }
const gates = new Map<string, Gate>();

/**
 * The SQLite engine behind the async `Registry` contract, over one better-sqlite3
 * connection (whose calls are synchronous: each Promise is settled when returned).
 *
 * Transactions are BEGIN IMMEDIATE … COMMIT around an async `fn`: the write lock
 * on the file is taken up front, so a second writer (another process) waits on
 * the busy timeout instead of failing half-way, and every read inside sees what
 * the transaction will overwrite (the isolation a refresh check-and-rotate needs).
 * In this process, transactions on one file run one at a time, and a root call
 * made while one is open waits for it: on the same connection it would otherwise
 * run inside it (and be rolled back with it); on another, wait for its lock.
 */
export class SqliteRegistry implements Registry {
  readonly devices: DeviceStore;
  readonly profiles: ProfileStore;
  readonly tokens: TokenStore;
  readonly grants: GrantStore;
  readonly claims: ClaimStore;
  readonly refresh: RefreshStore;
  readonly audit: AuditStore;
  readonly changes: ChangeFeed;
  readonly keys: KeyStore;
  readonly settings: SettingsStore;
  readonly operators: OperatorStore;
  readonly bulk: BulkStore;
  readonly space: SpaceStore;
  readonly location: string;
  private readonly gate: Gate;
  /** Bumped by every call: the follower looks at the feed again after this connection's own writes too (data_version misses them). */
  private calls = 0;
  private readonly followers = new Set<SqliteFollower>();
  private readonly txStores: StoreSet;

  /** `sync` is the connection itself: public for tests that look inside the file through the broker's own connection. */
  constructor(readonly sync: SqliteStores) {
    this.location = sync.path;
    const file = resolve(sync.path);
    this.gate = gates.get(file) ?? { txDone: null, users: 0 };
    gates.set(file, this.gate);
    this.gate.users++;
    const run: Runner = (fn) => this.run(fn);
    const stores = storesOf(sync, run);
    this.devices = stores.devices;
    this.profiles = stores.profiles;
    this.tokens = stores.tokens;
    this.grants = stores.grants;
    this.claims = stores.claims;
    this.refresh = stores.refresh;
    this.audit = stores.audit;
    this.keys = stores.keys;
    this.settings = stores.settings;
    this.operators = stores.operators;
    this.bulk = stores.bulk;
    this.changes = { ...stores.changes, follow: (from, on, opts) => this.follow(from, on, opts) };
    this.space = asyncStore(sync.space, run);
    this.txStores = storesOf(sync, (fn) => this.direct(fn));
  }

  /** A root call: at once unless a transaction is open, then after it. */
  private run<R>(fn: () => R): Promise<R> {
    if (this.gate.txDone) return this.gate.txDone.then(() => this.run(fn));
    this.calls++;
    return this.direct(fn);
  }

  private direct<R>(fn: () => R): Promise<R> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(asRegistryError(err, this.location));
    }
  }

  async transaction<T>(fn: (tx: RegistryTx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    while (this.gate.txDone) await this.gate.txDone;
    let release!: () => void;
    this.gate.txDone = new Promise((r) => { release = r; });
    this.calls++;
    const { db } = this.sync;
    let open = true;
    const tx = this.txView(() => open);
    try {
      if (opts.durable) db.pragma('synchronous = FULL');
      try {
        db.exec('BEGIN IMMEDIATE');
      } catch (err) {
        throw asRegistryError(err, this.location);
      }
      try {
        const result = await fn(tx);
        db.exec('COMMIT');
        return result;
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw asRegistryError(err, this.location);
      }
    } finally {
      open = false;
      if (opts.durable) db.pragma(`synchronous = ${EVERYDAY_SYNC}`);
      this.gate.txDone = null;
      release();
    }
  }

  /** The stores of the open transaction; a call after it ended is a bug, refused. */
  private txView(isOpen: () => boolean): RegistryTx {
    const s = this.txStores;
    const guard = <S extends object>(store: S): S => new Proxy(store, {
      get: (target, key, recv) => {
        if (!isOpen()) throw new RegistryError('ERR_REGISTRY', 'registry transaction used after it ended');
        return Reflect.get(target, key, recv) as unknown;
      },
    });
    const tx: Stores = {
      devices: guard(s.devices), profiles: guard(s.profiles), tokens: guard(s.tokens), grants: guard(s.grants), claims: guard(s.claims), refresh: guard(s.refresh),
      audit: guard(s.audit), changes: guard(s.changes), keys: guard(s.keys), settings: guard(s.settings), operators: guard(s.operators),
      bulk: guard(s.bulk),
      transaction: (fn) => fn(tx),
    };
    return tx;
  }

  private follow(fromSeq: number, onChanges: (changes: readonly Change[]) => void | Promise<void>, opts: FollowOptions = {}): ChangeFollower {
    const f = new SqliteFollower(this.sync, () => this.calls, fromSeq, onChanges, opts, () => this.followers.delete(f));
    this.followers.add(f);
    return f;
  }

  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const f of [...this.followers]) await f.close();
    while (this.gate.txDone) await this.gate.txDone;
    this.sync.close();
    if (--this.gate.users === 0) gates.delete(resolve(this.sync.path));
  }
}

/**
 * Follows the change feed by polling: each tick reads `PRAGMA data_version`
 * (it changes when another connection commits) and only then the new rows.
 */
class SqliteFollower implements ChangeFollower {
  private pos: number;
  private seenVersion = -1;
  private seenCalls = -1;
  private failing = false;
  private busy: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly sync: SqliteStores, private readonly calls: () => number, fromSeq: number,
    private readonly onChanges: (changes: readonly Change[]) => void | Promise<void>,
    private readonly opts: FollowOptions, private readonly onClose: () => void,
  ) {
    this.pos = fromSeq;
    this.timer = setInterval(() => { this.busy ??= this.tick().finally(() => { this.busy = null; }); }, opts.pollMs ?? 50).unref();
  }

  get position(): number {
    return this.pos;
  }

  private async tick(): Promise<void> {
    try {
      const version = this.sync.db.pragma('data_version', { simple: true }) as number;
      const calls = this.calls();
      if (version === this.seenVersion && calls === this.seenCalls) return;
      const changes = this.sync.changes.since(this.pos);
      if (changes.length) await this.onChanges(changes);
      // Only once handled: a failed batch is read again at the next tick.
      if (changes.length) this.pos = changes[changes.length - 1]!.seq;
      this.seenVersion = version;
      this.seenCalls = calls;
      if (this.failing) {
        this.failing = false;
        this.opts.onRecover?.();
      }
    } catch (err) {
      this.failing = true;
      this.opts.onError?.(asRegistryError(err, this.sync.path));
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.busy;
    this.onClose();
  }
}
