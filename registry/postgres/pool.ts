import pg from 'pg';
import { RegistryError } from '../../errors/index.js';
import { warnOperator } from '../warnings.js';
import { asPgRegistryError } from './errors.js';
import { pgTlsPolicy } from './tls.js';

/**
 * Where every store sends its SQL: the pool (each statement its own autocommit
 * transaction), a transaction's connection (tx-sql.ts), or one connection of
 * its own (the change follower). Failures come out mapped (`asPgRegistryError`),
 * with the driver's error as `cause`.
 */
export interface Sql {
  rows<T>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a statement; resolves to the number of rows it touched. */
  run(text: string, params?: readonly unknown[]): Promise<number>;
  /**
   * A write whose outcome the caller does not read. In a transaction it may resolve
   * before the server has answered (it travels with the next statement), and a
   * failure fails the transaction at the latest at its commit.
   */
  write(text: string, params?: readonly unknown[]): Promise<void>;
  /** Whether the statements run in one transaction (advisory transaction locks hold until its end). */
  readonly inTransaction: boolean;
  /** The transaction's connection to itself (COPY), every earlier statement answered; refused outside a transaction. */
  connection(what: string): Promise<pg.ClientBase>;
}

const INT8 = 20;
/**
 * BIGINT columns hold epoch milliseconds and counts: as numbers (exact up to 2^53),
 * not the strings node-postgres returns by default.
 */
export const PG_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** How long a new connection may take before the registry counts as unavailable. */
const CONNECT_TIMEOUT_MS = 5_000;
const POOL_SIZE = 10;

/**
 * The pool for a `postgres://` URL. `sslmode` follows libpq (disable, prefer,
 * require, verify-ca, verify-full; `sslrootcert`, `sslcert`, `sslkey` name PEM
 * files), which is what an operator's other tools read from the same URL; off
 * this machine, no `sslmode` means `verify-full` (`pgTlsPolicy`).
 */
export function connectionConfig(url: string, opts: { readonly?: boolean } = {}): pg.ClientConfig {
  const { url: connectionString, warning } = pgTlsPolicy(url);
  if (warning) warnOperator(warning);
  return {
    connectionString,
    application_name: 'credbroker',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    types: PG_TYPES,
    // A read-only command cannot write by accident, as SQLite's read-only open.
    ...(opts.readonly ? { options: '-c default_transaction_read_only=on' } : {}),
  };
}

/**
 * A client that closes its socket when its connect fails. node-postgres leaves it open when
 * the failure comes from its own side of the login (no password to answer the server's
 * SCRAM challenge): the server then holds it until its authentication_timeout (a minute by
 * default), and so would a CLI command that has already said why it failed.
 */
export class Client extends pg.Client {
  override connect(): Promise<pg.Client>;
  override connect(callback: (err: Error) => void): void;
  override connect(callback?: (err: Error) => void): Promise<pg.Client> | void {
    const closeOnError = (err: Error | null | undefined) => {
      if (err) (this as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    };
    if (callback) return super.connect((err: Error) => { closeOnError(err); callback(err); });
    return super.connect().catch((err: Error) => { closeOnError(err); throw err; });
  }
}

export function createPool(url: string, opts: { readonly?: boolean } = {}): pg.Pool {
  const pool = new pg.Pool({ ...connectionConfig(url, opts), Client, max: POOL_SIZE, idleTimeoutMillis: 30_000 });
  // An idle connection dropped by the server (a restart) is discarded; the next
  // query opens a new one. Without a listener the process would die of it.
  pool.on('error', () => {});
  return pool;
}

function mapped(where: string) {
  return (err: unknown): never => {
    throw asPgRegistryError(err, where);
  };
}

/** Statements straight on the pool (autocommit) or on a connection outside any transaction. */
export class DirectSql implements Sql {
  readonly inTransaction = false;
  constructor(private readonly on: pg.Pool | pg.ClientBase, private readonly where: string) {}
  async rows<T>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    const r = await this.on.query(text, params as unknown[]).catch(mapped(this.where));
    return r.rows as T[];
  }
  async run(text: string, params: readonly unknown[] = []): Promise<number> {
    const r = await this.on.query(text, params as unknown[]).catch(mapped(this.where));
    return r.rowCount ?? 0;
  }
  async write(text: string, params: readonly unknown[] = []): Promise<void> {
    await this.run(text, params);
  }
  connection(what: string): Promise<pg.ClientBase> {
    return Promise.reject(new RegistryError('ERR_REGISTRY', `${what} must run in a registry transaction`));
  }
}
