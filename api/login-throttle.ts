import { KeyedRateLimiter } from '../broker/rate-limit.js';

/**
 * Failed sign-ins, throttled per operator name (one account guessed from many
 * addresses) and per address (many accounts guessed from one). A throttled
 * attempt is refused before its password is hashed. Memory is bounded: buckets
 * exist only for failures, which each cost a scrypt hash first, and a refilled
 * bucket is swept away (KeyedRateLimiter).
 */
export class LoginThrottle {
  // Per name: 5 failures at once, then one per 30 s (2 guesses a minute against one account).
  private readonly byName = new KeyedRateLimiter(5, 1 / 30);
  // Per address: 20 at once, then one per 3 s.
  private readonly byAddress = new KeyedRateLimiter(20, 1 / 3);

  /** Whether an attempt may be checked now. */
  allows(name: string, address: string, now = Date.now()): boolean {
    return this.byAddress.allows(address, now) && this.byName.allows(name, now);
  }

  failed(name: string, address: string, now = Date.now()): void {
    this.byAddress.take(address, now);
    this.byName.take(name, now);
  }

  close(): void {
    this.byName.close();
    this.byAddress.close();
  }
}
