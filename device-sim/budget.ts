/**
 * Paces the sim's deliberate failed authentications (revoked devices retrying,
 * client-id probes). All simulated devices share one source address, and the
 * broker throttles failed logins per address: once its bucket is empty it
 * refuses *every* CONNECT from that address, legitimate ones included. So the
 * sim spends its own, smaller token bucket; attempts that find no token before
 * the run ends are reported as skipped rather than sent.
 */
export class FailedAuthBudget {
  private tokens: number;
  private at = Date.now();
  private readonly queue: { priority: number; seq: number; start: () => void; cancel: () => void }[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  used = 0;
  skipped = 0;

  constructor(private readonly burst: number, private readonly perSec: number) {
    this.tokens = burst;
  }

  /** Runs `fn` when a token is free (lower priority first); null when the budget closed first. */
  run<T>(priority: number, fn: () => Promise<T>): Promise<T | null> {
    if (this.closed) {
      this.skipped++;
      return Promise.resolve(null);
    }
    return new Promise<T | null>((resolve, reject) => {
      this.queue.push({
        priority, seq: this.seq++,
        start: () => fn().then(resolve, reject),
        cancel: () => resolve(null),
      });
      this.queue.sort((a, b) => a.priority - b.priority || a.seq - b.seq);
      this.pump();
    });
  }

  private pump(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSec);
    this.at = now;
    while (this.tokens >= 1 && this.queue.length) {
      this.tokens -= 1;
      this.used++;
      this.queue.shift()!.start();
    }
    if (this.queue.length && !this.timer) {
      const wait = Math.max(10, Math.ceil(((1 - this.tokens) / this.perSec) * 1000));
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, wait);
    }
  }

  get pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const q of this.queue.splice(0)) {
      this.skipped++;
      q.cancel();
    }
  }
}
