import pg from 'pg';
import type { ChangeFollower, FollowOptions } from '../interface.js';
import type { Change } from '../types.js';
import { FEED_BATCH, PgChanges } from './changes.js';
import { asPgRegistryError } from './errors.js';
import { Client, DirectSql } from './pool.js';

/** The channel the `changes` trigger NOTIFYs (registry/postgres/migrations.ts). */
export const CHANGES_CHANNEL = 'credbroker_changes';

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 2_000;
/**
 * The catch-up read's period without a notification: a safety net, and how a
 * silently dead connection is noticed. `pollMs` below the floor is raised to it
 * (the broker passes its SQLite poll period, 50 ms): NOTIFY already brings changes at once.
 */
const DEFAULT_POLL_MS = 1_000;
const MIN_POLL_MS = 500;

/**
 * Follows the change feed on a connection of its own: LISTEN for speed (a NOTIFY
 * arrives at the writer's commit), and a read by sequence number after every
 * (re)connect and every `pollMs`, so that nothing committed while the connection
 * was down — or a notification lost with it — is ever skipped. Changes commit in
 * seq order (PgChanges.append), so reading `seq > position` is complete.
 * The server down: `onError` per failed attempt, reconnecting with backoff
 * (250 ms doubling to 2 s); `onRecover` once it has caught up again.
 */
export class PgFollower implements ChangeFollower {
  private pos: number;
  private client: pg.Client | null = null;
  /** `client` is connected and listening. */
  private ready = false;
  private closed = false;
  private failing = false;
  private reading: Promise<void> | null = null;
  private again = false;
  private backoff = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly pollTimer: NodeJS.Timeout;

  constructor(
    private readonly config: pg.ClientConfig, private readonly where: string, fromSeq: number,
    private readonly onChanges: (changes: readonly Change[]) => void | Promise<void>,
    private readonly opts: FollowOptions, private readonly onClose: () => void,
  ) {
    this.pos = fromSeq;
    this.pollTimer = setInterval(() => this.pull(), Math.max(opts.pollMs ?? DEFAULT_POLL_MS, MIN_POLL_MS)).unref();
    void this.connect();
  }

  get position(): number {
    return this.pos;
  }

  private async connect(): Promise<void> {
    this.reconnectTimer = null;
    if (this.closed) return;
    const client = new Client(this.config);
    this.client = client;
    const lost = (err?: unknown) => this.lost(client, err ?? new Error('Connection terminated'));
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', () => this.pull());
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (err) {
      lost(err);
      return;
    }
    if (this.closed || this.client !== client) return;
    this.ready = true;
    this.pull();
  }

  /** The connection is gone (or never came): report, and try again later from `position`. */
  private lost(client: pg.Client, err: unknown): void {
    if (this.client !== client) return; // an old connection's late events
    this.client = null;
    this.ready = false;
    client.removeAllListeners('notification');
    client.on('error', () => {});
    void client.end().catch(() => {});
    if (this.closed) return;
    this.fail(err);
    this.reconnectTimer = setTimeout(() => void this.connect(), this.backoff);
    this.reconnectTimer.unref();
    this.backoff = Math.min(this.backoff * 2, RECONNECT_MAX_MS);
  }

  private fail(err: unknown): void {
    this.failing = true;
    this.opts.onError?.(asPgRegistryError(err, this.where));
  }

  /** Reads everything after `position`; a pull asked for while one runs makes it read once more. */
  private pull(): void {
    if (this.closed || !this.ready) return;
    if (this.reading) { this.again = true; return; }
    this.reading = this.drain().finally(() => { this.reading = null; });
  }

  private async drain(): Promise<void> {
    do {
      this.again = false;
      const client = this.client;
      if (!client || !this.ready || this.closed) return;
      let batch: Change[];
      try {
        batch = await new PgChanges(new DirectSql(client, this.where)).since(this.pos, FEED_BATCH);
      } catch (err) {
        // A dead connection shows here first when no event came: drop it and reconnect.
        this.lost(client, err);
        return;
      }
      if (batch.length) {
        try {
          await this.onChanges(batch);
        } catch (err) {
          this.fail(err); // not handled: read again at the next pull
          return;
        }
        this.pos = batch[batch.length - 1]!.seq;
        if (batch.length === FEED_BATCH) this.again = true;
      }
      this.backoff = RECONNECT_MIN_MS;
      if (this.failing) {
        this.failing = false;
        this.opts.onRecover?.();
      }
    } while (this.again && !this.closed);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pollTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    await this.reading;
    const client = this.client;
    this.client = null;
    this.ready = false;
    if (client) {
      client.on('error', () => {});
      await client.end().catch(() => {});
    }
    this.onClose();
  }
}
