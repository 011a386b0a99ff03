import type { Actor, DeviceId, Registry } from '../registry/index.js';
import type { Logger } from './logger.js';

interface Row { actor: Actor; action: string; deviceId: string | null; details: Record<string, unknown> | null; at: number }

/**
 * Audit rows and last-seen times from the CONNECT path, written in one
 * transaction every `intervalMs` instead of one write per connect. Bounded: past
 * `maxRows` per interval, rows are counted and summarised, not stored (a login
 * flood must not turn into a disk flood). A failed flush keeps its rows for the
 * next one.
 */
export class AuditBuffer {
  private rows: Row[] = [];
  private seen = new Map<string, number>();
  private suppressed = 0;
  /** The write under way: one at a time, or the next tick would write the same rows again. */
  private flushing: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly reg: Registry, private readonly log: Logger, intervalMs = 250, private readonly maxRows = 2000) {
    this.timer = setInterval(() => void this.flush(), intervalMs).unref();
  }

  add(actor: Actor, action: string, deviceId: string | null, details: Record<string, unknown> | null = null): void {
    if (this.rows.length >= this.maxRows) { this.suppressed++; return; }
    this.rows.push({ actor, action, deviceId, details, at: Date.now() });
  }

  seenNow(deviceId: DeviceId): void {
    this.seen.set(deviceId, Date.now());
  }

  /** Writes what is buffered; resolves when written (or the write failed: logged, kept for the next). */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => { this.flushing = null; });
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (!this.rows.length && !this.seen.size && !this.suppressed) return;
    // What this write takes: rows added meanwhile stay behind them for the next one.
    const rows = this.rows.slice();
    const seen = new Map(this.seen);
    const suppressed = this.suppressed;
    try {
      await this.reg.transaction(async (tx) => {
        await tx.audit.appendMany(suppressed ? [...rows, { actor: 'broker', action: 'audit.suppressed', deviceId: null, details: { rows: suppressed } }] : rows);
        await tx.devices.touchMany(seen as Map<DeviceId, number>);
      });
    } catch (err) {
      // The buffer is emptied only once written: a refused flush (another writer held
      // the registry past the busy timeout, the database is down) is retried by the next one.
      this.log.error({ event: 'audit.flush_failed', err: (err as Error).message, rows: this.rows.length }, 'audit flush failed; will retry');
      return;
    }
    this.rows.splice(0, rows.length);
    for (const [id, at] of seen) if (this.seen.get(id) === at) this.seen.delete(id);
    this.suppressed -= suppressed;
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }
}
