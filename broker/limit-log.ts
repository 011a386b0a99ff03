import type { Logger } from './logger.js';

const INTERVAL_MS = 10_000;
const SAMPLE = 5;

/**
 * One warning per limit and 10 s while it bites, with how often it bit and a
 * few of the addresses involved: a flood must not become a flood of log lines.
 */
export class LimitLog {
  private readonly state = new Map<string, { count: number; sample: Set<string>; loggedAt: number }>();

  constructor(private readonly log: Logger) {}

  hit(limit: string, address: string, now = Date.now()): void {
    let s = this.state.get(limit);
    if (!s) this.state.set(limit, (s = { count: 0, sample: new Set(), loggedAt: 0 }));
    s.count++;
    if (s.sample.size < SAMPLE) s.sample.add(address);
    if (now - s.loggedAt < INTERVAL_MS) return;
    this.log.warn({ event: 'limit.hit', limit, count: s.count, addresses: [...s.sample] }, `limit reached: ${limit} (see the "Flood" entry of the operator runbook)`);
    s.count = 0;
    s.sample.clear();
    s.loggedAt = now;
  }
}
