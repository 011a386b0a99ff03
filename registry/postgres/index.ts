import type pg from 'pg';
import { RegistryError } from '../../errors/index.js';
import { DEFAULT_PROFILES } from '../defaults.js';
import type {
  ChangeFeed, ChangeFollower, FollowOptions, OpenOptions, Registry, RegistryEngine, RegistryTx, Stores, TransactionOptions,
} from '../interface.js';
import { redactSecrets } from '../location.js';
import type { Change } from '../types.js';
import { PgAuditLog } from './audit.js';
import { PgBulk } from './bulk.js';
import { PgChanges } from './changes.js';
import { PgDevices } from './devices.js';
import { PgGrants } from './grants.js';
import { PgClaims } from './claims.js';
import { asPgRegistryError, isRetryable, isUnavailable } from './errors.js';
import { PgFollower } from './follow.js';
import { PgSigningKeys } from './keys.js';
import { migrate, schemaVersion, tooNew } from './migrations.js';
import { SCHEMA_VERSION } from '../migration-plan.js';
import { connectionConfig, createPool, DirectSql, type Sql } from './pool.js';
import { TxSql } from './tx-sql.js';
import { PgOperators } from './operators.js';
import { PgProfiles } from './profiles.js';
import { PgRefreshCredentials } from './refresh.js';
import { PgSettings } from './settings.js';
import { PgSpace } from './space.js';
import { PgTokens } from './tokens.js';

type Tx = <T>(fn: (tx: RegistryTx) => Promise<T>, opts?: TransactionOptions) => Promise<T>;

function storesOn(sql: Sql, transaction: Tx): Stores {
  return {
    devices: new PgDevices(sql), profiles: new PgProfiles(sql), tokens: new PgTokens(sql), grants: new PgGrants(sql), claims: new PgClaims(sql), refresh: new PgRefreshCredentials(sql),
    audit: new PgAuditLog(sql), changes: new PgChanges(sql), keys: new PgSigningKeys(sql), settings: new PgSettings(sql), operators: new PgOperators(sql),
    bulk: new PgBulk(sql),
    transaction,
  };
}

/** A deadlock or serialization failure is retried this many times in all (the transaction ran to no effect). */
const TX_ATTEMPTS = 3;

/**
 * The PostgreSQL engine behind the `Registry` contract: a pool of connections
 * (root calls are autocommit statements), transactions on one pooled connection
 * (READ COMMITTED, with `SELECT … FOR UPDATE` where the contract asks for it),
 * and the change feed pushed by LISTEN/NOTIFY (follow.ts).
 *
 * Durability: PostgreSQL commits are on disk when they return (synchronous_commit
 * on). Ordinary transactions ask for `synchronous_commit = off` instead (a crash
 * of the server may lose the last few hundred milliseconds of renewals, never
 * corrupt anything), as SQLite's registry runs NORMAL; `durable` ones (revocations,
 * killed keys) commit with it on, whatever the server's default.
 */
export class PgRegistry implements Registry {
  readonly devices; readonly profiles; readonly tokens; readonly grants; readonly claims; readonly refresh; readonly audit; readonly keys; readonly settings; readonly operators;
  readonly bulk;
  readonly changes: ChangeFeed;
  readonly space: PgSpace;
  readonly location: string;
  private readonly followers = new Set<PgFollower>();
  private closed = false;
  private readonly sql: Sql;

  constructor(private readonly pool: pg.Pool, private readonly config: pg.ClientConfig, url: string) {
    this.location = redactSecrets(url);
    const sql = new DirectSql(pool, this.location);
    this.sql = sql;
    const s = storesOn(sql, (fn, opts) => this.transaction(fn, opts));
    this.devices = s.devices; this.profiles = s.profiles; this.tokens = s.tokens; this.grants = s.grants; this.claims = s.claims; this.refresh = s.refresh;
    this.audit = s.audit; this.keys = s.keys; this.settings = s.settings; this.operators = s.operators; this.bulk = s.bulk;
    const changes = s.changes as PgChanges;
    this.changes = {
      append: (...a) => changes.append(...a),
      since: (seq) => changes.since(seq),
      prune: (...a) => changes.prune(...a),
      latest: () => changes.latest(),
      follow: (from, on, opts) => this.follow(from, on, opts),
    };
    this.space = new PgSpace(sql);
  }

  /**
   * Opens a registry in a PostgreSQL database: creates or migrates the schema and
   * seeds the default settings and profiles on first use (unless `readonly`).
   * The database itself must exist (made by its administrator, as for any application).
   */
  static async open(url: string, opts: OpenOptions): Promise<PgRegistry> {
    const where = redactSecrets(url);
    let config: pg.ClientConfig;
    try {
      config = connectionConfig(url);
    } catch (err) {
      throw asPgRegistryError(err, where);
    }
    let reg = new PgRegistry(createPool(url), config, url);
    try {
      const version = await schemaVersion(reg.sql);
      if (version > SCHEMA_VERSION) throw tooNew(version, where);
      // As SQLite's read-only open of a missing file: a command that only reads never creates a registry.
      if (opts.readonly && version === 0) throw new RegistryError('ERR_REGISTRY', `no registry in ${where}: create it with "credbroker init --db URL"`);
      if (opts.readonly && version === SCHEMA_VERSION) {
        await reg.close();
        reg = new PgRegistry(createPool(url, { readonly: true }), config, url);
        return reg;
      }
      // A readonly open of an older schema migrates first, as SQLite's does.
      await reg.withTransaction(async (tx, sql) => {
        await migrate(sql, where);
        if (opts.readonly) return;
        await tx.settings.seed(opts.init ?? {});
        if ((await tx.profiles.list()).length === 0) for (const p of DEFAULT_PROFILES) await tx.profiles.set(p);
      }, {});
      return reg;
    } catch (err) {
      await reg.close();
      throw asPgRegistryError(err, where);
    }
  }

  transaction<T>(fn: (tx: RegistryTx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    return this.withTransaction((tx) => fn(tx), opts);
  }

  /** `transaction`, handing `fn` the connection's Sql as well (migrations). */
  private async withTransaction<T>(fn: (tx: RegistryTx, sql: Sql) => Promise<T>, opts: TransactionOptions): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(fn, opts);
      } catch (err) {
        if (attempt < TX_ATTEMPTS && isRetryable((err as { cause?: unknown }).cause ?? err)) continue;
        throw asPgRegistryError(err, this.location);
      }
    }
  }

  private async attempt<T>(fn: (tx: RegistryTx, sql: Sql) => Promise<T>, opts: TransactionOptions): Promise<T> {
    const client = await this.pool.connect().catch((err: unknown) => { throw asPgRegistryError(err, this.location); });
    // A checked-out connection has no listener of the pool's: the server going away would otherwise crash the process.
    const ignore = () => {};
    client.on('error', ignore);
    let broken = false;
    const sql = new TxSql(client, this.location, opts.durable === true);
    const tx: Stores = storesOn(sql, (inner) => inner(tx));
    try {
      const result = await fn(tx, sql);
      await sql.commit();
      return result;
    } catch (err) {
      broken = isUnavailable(err) || isUnavailable((err as { cause?: unknown }).cause);
      if (!broken) await sql.rollback().catch(() => { broken = true; });
      throw err;
    } finally {
      await sql.release();
      client.removeListener('error', ignore);
      client.release(broken);
    }
  }

  private follow(fromSeq: number, onChanges: (changes: readonly Change[]) => void | Promise<void>, opts: FollowOptions = {}): ChangeFollower {
    const f = new PgFollower(this.config, this.location, fromSeq, onChanges, opts, () => this.followers.delete(f));
    this.followers.add(f);
    return f;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const f of [...this.followers]) await f.close();
    await this.pool.end();
  }
}

/** The PostgreSQL engine: `target` is a `postgres://` URL. */
export const engine: RegistryEngine = { open: (url, opts) => PgRegistry.open(url, opts) };
