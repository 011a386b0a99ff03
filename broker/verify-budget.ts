import { addressKey } from './address.js';

/** How long an address stays suspect after its last failed (or refused) credential check. */
const SUSPECT_MS = 60_000;
/** Most suspect addresses remembered; the longest-quiet ones are forgotten first. */
const MAX_SUSPECTS = 100_000;

/**
 * A node-wide budget of credential checks (signature verifications, refresh
 * lookups) for addresses that failed one recently (issue 10 #10: a forged-token
 * flood over 500 addresses was all verified, 90 % of a core). The per-address
 * throttle alone lets N addresses through N times over; this bucket is shared by
 * all of them. An address with no recent failure is never held by it, so a
 * valid device on its own address is verified at once while the flood waits its
 * turn. A flooding address keeps itself suspect: a refusal renews it. An IPv6
 * /64 counts as one address.
 *
 * @example
 * if (!budget.isEmpty() && !budget.allows(address)) refuse('verify_budget');
 * // ... check the credential; on failure:
 * budget.failed(address);
 */
export class VerifyBudget {
  /** Address → last failure (ms), in that order: the first entry is the quietest. */
  private readonly suspects = new Map<string, number>();
  private tokens: number;
  private at = Date.now();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly perSecond: number, private readonly burst: number, private readonly onRefused: (address: string) => void) {
    this.tokens = burst;
    this.sweeper = setInterval(() => this.sweep(), 10_000).unref();
  }

  /** True when no address is suspect: lets callers skip looking up the peer address. */
  isEmpty(): boolean {
    return this.suspects.size === 0;
  }

  get suspectCount(): number {
    return this.suspects.size;
  }

  /** True when a credential check may be spent on `address` now (taking one from the budget when it is suspect). */
  allows(peer: string, now = Date.now()): boolean {
    const address = addressKey(peer);
    const last = this.suspects.get(address);
    if (last === undefined) return true;
    if (now - last > SUSPECT_MS) {
      this.suspects.delete(address);
      return true;
    }
    // max(): a clock that steps back must not take tokens away.
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.at) * this.perSecond) / 1000);
    this.at = Math.max(this.at, now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.mark(address, now);
    this.onRefused(address);
    return false;
  }

  /** A credential check from `address` failed. */
  failed(peer: string, now = Date.now()): void {
    this.mark(addressKey(peer), now);
  }

  private mark(address: string, now: number): void {
    this.suspects.delete(address);
    this.suspects.set(address, now);
    if (this.suspects.size > MAX_SUSPECTS) this.suspects.delete(this.suspects.keys().next().value!);
  }

  private sweep(now = Date.now()): void {
    for (const [address, last] of this.suspects) {
      if (now - last <= SUSPECT_MS) break; // in order of last failure: the rest are more recent
      this.suspects.delete(address);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
