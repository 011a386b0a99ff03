import type { Actor, DeviceId, SyncRegistry } from '../registry/index.js';
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
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly reg: SyncRegistry, private readonly log: Logger, intervalMs = 250, private readonly maxRows = 2000) {
    this.timer = setInterval(() => this.flush(), intervalMs).unref();
  }

  add(actor: Actor, action: string, deviceId: string | null, details: Record<string, unknown> | null = null): void {
    if (this.rows.length >= this.maxRows) { this.suppressed++; return; }
    this.rows.push({ actor, action, deviceId, details, at: Date.now() });
  }

  seenNow(deviceId: DeviceId): void {
    this.seen.set(deviceId, Date.now());
  }

  flush(): void {
    if (!this.rows.length && !this.seen.size && !this.suppressed) return;
    try {
      this.reg.write(() => {
        for (const r of this.rows) this.reg.audit.append(r.actor, r.action, r.deviceId, r.details, r.at);
        if (this.suppressed) this.reg.audit.append('broker', 'audit.suppressed', null, { rows: this.suppressed });
        for (const [id, at] of this.seen) this.reg.devices.touch(id as DeviceId, at);
      });
    } catch (err) {
      // The buffer is emptied only once written: a refused flush (e.g. another writer
      // held the registry past the busy timeout) is retried by the next one.
      this.log.error({ event: 'audit.flush_failed', err: (err as Error).message, rows: this.rows.length }, 'audit flush failed; will retry');
      return;
    }
    this.rows = [];
    this.seen = new Map();
    this.suppressed = 0;
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
