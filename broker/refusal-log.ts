import type { Logger } from './logger.js';
import type { BrokerMetrics } from './metrics.js';
import { KeyedRateLimiter } from './rate-limit.js';

export interface RefusalLogLimits {
  /** Lines per address before the rate applies. */
  readonly burst: number;
  /** Lines per address per second after the burst. */
  readonly perSec: number;
  /** Lines per second from all addresses together (bucket of ten seconds' worth). */
  readonly maxPerSec: number;
}

/** Addresses counted one by one in a summary; more are counted in the total only. */
const MAX_SUMMARY_ADDRESSES = 1000;
const SUMMARY_TOP = 5;

/**
 * One info line per refused CONNECT — device id, reason, address — so that an
 * operator sees who is turned away and why, without letting a login flood fill
 * the disk: each address gets `burst` lines, then `perSec`; all addresses
 * together at most `maxPerSec` (so a flood from many addresses is bounded too).
 * What is held back is counted (`credbroker_log_lines_suppressed_total`) and told
 * in one summary line per `summaryMs` with the busiest addresses.
 *
 * Bound, per address over T seconds: burst + perSec × T lines, plus
 * T / summaryMs summary lines for all addresses together.
 */
export class RefusalLog {
  private readonly perAddress: KeyedRateLimiter;
  private readonly overall: KeyedRateLimiter;
  private readonly held = new Map<string, number>();
  private heldTotal = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly log: Logger, private readonly metrics: BrokerMetrics, limits: RefusalLogLimits, summaryMs = 60_000) {
    this.perAddress = new KeyedRateLimiter(limits.burst, limits.perSec);
    this.overall = new KeyedRateLimiter(Math.max(1, limits.maxPerSec * 10), limits.maxPerSec);
    this.timer = setInterval(() => this.flush(), summaryMs).unref();
  }

  refused(line: { device: string | null; reason: string; address: string; connack: number }): void {
    // The overall bucket is only spent when the address still has a line to spend.
    if (this.perAddress.allows(line.address) && this.overall.take('*')) {
      this.perAddress.take(line.address);
      this.log.info({ event: 'auth.refused', ...line }, 'connect refused');
      return;
    }
    this.metrics.logSuppressed.inc({ event: 'auth.refused' });
    this.heldTotal++;
    const n = this.held.get(line.address);
    if (n !== undefined || this.held.size < MAX_SUMMARY_ADDRESSES) this.held.set(line.address, (n ?? 0) + 1);
  }

  /** One summary line for the refusals held back since the last one (none when nothing was). */
  flush(): void {
    if (this.heldTotal === 0) return;
    const top = [...this.held].sort((a, b) => b[1] - a[1]).slice(0, SUMMARY_TOP).map(([address, count]) => ({ address, count }));
    this.log.info({ event: 'auth.refused_suppressed', suppressed: this.heldTotal, addresses: this.held.size, top },
      'refused connects not logged one by one (rate limit per address)');
    this.held.clear();
    this.heldTotal = 0;
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
    this.perAddress.close();
    this.overall.close();
  }
}
