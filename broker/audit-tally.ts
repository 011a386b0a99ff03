import type { AuditBuffer } from './audit-buffer.js';
import type { BrokerMetrics } from './metrics.js';

export interface AuditTallyLimits {
  /** Rows written one by one per key (an address, a device) in a window; the rest are counted. */
  readonly rowsPerKey: number;
  /** Rows written one by one in a window for all keys together. */
  readonly rowsPerWindow: number;
  /** The window, ms: one summary row per key and window. */
  readonly windowMs: number;
}

/** Keys tallied one by one in a window; the events of further keys go into one `*` tally per action. */
const MAX_KEYS = 1000;
/** Device ids named in a summary row (an address may try many). */
const MAX_DEVICES_NAMED = 5;

interface Tally {
  readonly action: string;
  readonly keyName: 'address' | 'device';
  readonly key: string;
  /** Events of this key in the window, written or not. */
  seen: number;
  /** Events counted instead of written. */
  counted: number;
  readonly reasons: Record<string, number>;
  readonly devices: Set<string>;
  firstAt: number;
  lastAt: number;
}

/**
 * Audit events that come in floods — refused logins per address, refused
 * renewals per device — become counters plus one summary row per key and window
 * (`<action>.summary`), instead of a row per attempt. The first `rowsPerKey`
 * events of a key in a window are still written one by one (within
 * `rowsPerWindow` for all keys), so a one-off failure reads as before; an event
 * that was not even checked (a throttled login) is only ever counted.
 *
 * Bound per window: `rowsPerWindow` rows, plus one summary row per key (at most
 * 1,000 keys, then one `*` row per action).
 */
export class AuditTally {
  private tallies = new Map<string, Tally>();
  private rowsInWindow = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly audit: AuditBuffer, private readonly metrics: BrokerMetrics, private readonly limits: AuditTallyLimits) {
    this.timer = setInterval(() => this.flush(), limits.windowMs).unref();
  }

  /**
   * One event about `key`. Written as a row of its own (`action`, `details`) while
   * the key and the window have rows left and `rowAllowed`; counted otherwise.
   */
  event(action: string, keyName: 'address' | 'device', key: string, deviceId: string | null, reason: string, details: Record<string, unknown>, rowAllowed = true): void {
    const now = Date.now();
    const t = this.tallyFor(action, keyName, key, now);
    t.seen++;
    if (rowAllowed && t.seen <= this.limits.rowsPerKey && this.rowsInWindow < this.limits.rowsPerWindow) {
      this.rowsInWindow++;
      this.audit.add('broker', action, deviceId, details);
      return;
    }
    t.counted++;
    t.reasons[reason] = (t.reasons[reason] ?? 0) + 1;
    if (deviceId !== null && t.devices.size < MAX_DEVICES_NAMED) t.devices.add(deviceId);
    if (t.counted === 1) t.firstAt = now;
    t.lastAt = now;
    this.metrics.auditSummarized.inc({ action });
  }

  private tallyFor(action: string, keyName: 'address' | 'device', key: string, now: number): Tally {
    const id = `${action}\n${key}`;
    let t = this.tallies.get(id);
    if (t) return t;
    const overflow = this.tallies.size >= MAX_KEYS;
    const k = overflow ? '*' : key;
    t = this.tallies.get(`${action}\n${k}`);
    if (t) return t;
    t = { action, keyName, key: k, seen: 0, counted: 0, reasons: {}, devices: new Set(), firstAt: now, lastAt: now };
    this.tallies.set(`${action}\n${k}`, t);
    return t;
  }

  /** Ends the window: one summary row per key whose events were counted. */
  flush(): void {
    for (const t of this.tallies.values()) {
      if (t.counted === 0) continue;
      this.audit.add('broker', `${t.action}.summary`, t.keyName === 'device' && t.key !== '*' ? t.key : null, {
        [t.keyName]: t.key, count: t.counted, reasons: t.reasons,
        ...(t.keyName === 'address' && t.devices.size > 0 && { devices: [...t.devices] }),
        firstAt: t.firstAt, lastAt: t.lastAt,
      });
    }
    this.tallies = new Map();
    this.rowsInWindow = 0;
  }

  /** Writes the summaries of the window so far (into the audit buffer, which the caller flushes next). */
  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
