import type pg from 'pg';
import { RegistryError } from '../../errors/index.js';
import { asPgRegistryError } from './errors.js';
import type { Sql } from './pool.js';

/** node-postgres reads the flag on every send: switched only while nothing is in flight. */
function pipelining(client: pg.ClientBase, on: boolean): void {
  (client as unknown as { pipeline: boolean }).pipeline = on;
}

/**
 * One transaction's statements on its pooled connection, pipelined (node-postgres
 * `pipeline` mode): BEGIN and the writes whose outcome nobody reads (`write`) go out
 * without waiting for their answers, so they travel with the next statement that is
 * awaited (a read, COMMIT). The server runs them in order all the same. Why: on a
 * busy host each round trip waits for the server's turn on a core and then for the
 * event loop's, and a renewal's transaction was five of them (now two).
 * Failures come out mapped (`asPgRegistryError`); the first one is what the
 * transaction fails with, whichever later statement (or COMMIT) finds it.
 */
export class TxSql implements Sql {
  readonly inTransaction = true;
  private readonly sent: Promise<unknown>[] = [];
  private failure: { err: unknown } | null = null;
  private open = true;

  constructor(private readonly client: pg.ClientBase, private readonly where: string, durable: boolean) {
    pipelining(client, true);
    void this.send(`BEGIN; SET LOCAL synchronous_commit = ${durable ? 'on' : 'off'}`).catch(() => {});
  }

  async rows<T>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    return (await this.answer(text, params)).rows as T[];
  }

  async run(text: string, params: readonly unknown[] = []): Promise<number> {
    return (await this.answer(text, params)).rowCount ?? 0;
  }

  write(text: string, params: readonly unknown[] = []): Promise<void> {
    void this.send(text, params).catch(() => {});
    return Promise.resolve();
  }

  /** Ends the transaction: throws the first failure of any statement sent (COMMIT then rolled it back). */
  async commit(): Promise<void> {
    void this.send('COMMIT').catch(() => {});
    await this.settle();
    this.open = false;
    if (this.failure) throw asPgRegistryError(this.failure.err, this.where);
  }

  /** Rolls back (after a failure), once every statement sent has been answered. */
  async rollback(): Promise<void> {
    this.open = false;
    await this.settle();
    await this.client.query('ROLLBACK');
  }

  /** Called before the connection goes back to the pool: nothing of it is left in flight. */
  async release(): Promise<void> {
    this.open = false;
    await this.settle();
    pipelining(this.client, false);
  }

  async connection(): Promise<pg.ClientBase> {
    await this.settle();
    if (this.failure) throw asPgRegistryError(this.failure.err, this.where);
    // COPY streams are refused in pipeline mode; the rest of the transaction waits for each answer.
    pipelining(this.client, false);
    return this.client;
  }

  private async answer(text: string, params: readonly unknown[]): Promise<pg.QueryResult> {
    try {
      return await this.send(text, params);
    } catch (err) {
      // A statement after a failed write fails only because the transaction is aborted: report the write.
      throw asPgRegistryError(this.failure?.err ?? err, this.where);
    }
  }

  private send(text: string, params?: readonly unknown[]): Promise<pg.QueryResult> {
    if (!this.open) return Promise.reject(new RegistryError('ERR_REGISTRY', 'registry transaction used after it ended'));
    const p = this.client.query(text, params as unknown[] | undefined);
    // Answers come in the order sent: the first failure recorded is the first statement that failed.
    this.sent.push(p.catch((err: unknown) => { this.failure ??= { err }; }));
    return p;
  }

  private async settle(): Promise<void> {
    while (this.sent.length) await this.sent.shift();
  }
}
