/**
 * Reconnect backoff: capped exponential with "full jitter".
 *
 * Why jitter at all: when a broker restarts, every device in the fleet loses its
 * connection at the same instant. Without jitter they would all come back at
 * 500 ms, 1 s, 2 s, ... in lockstep and knock the broker over again. With full
 * jitter each wait is uniform in [0, cap], which spreads a reconnect storm
 * evenly (see "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
 *
 * Why a cap: a device that has been offline for an hour should not wait hours
 * once the network is back.
 */
export interface BackoffOptions {
  /** The cap of the first wait (default 500 ms). */
  initialMs?: number;
  /** The largest cap (default 30 s). */
  maxMs?: number;
  /** Uniform random in [0, 1); injectable for tests. */
  random?: () => number;
}

export const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000 } as const;

/** The cap of the `attempt`-th wait (0-based): min(maxMs, initialMs * 2^attempt). */
export function backoffCapMs(attempt: number, initialMs: number, maxMs: number): number {
  // 2 ** 1100 is Infinity, Math.min handles it; a negative attempt is treated as 0.
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt));
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = Math.max(1, opts.initialMs ?? DEFAULT_BACKOFF.initialMs);
    this.maxMs = Math.max(this.initialMs, opts.maxMs ?? DEFAULT_BACKOFF.maxMs);
    this.random = opts.random ?? Math.random;
  }

  /** How many waits have been handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The next wait: uniform in [0, cap), the cap doubling each call up to maxMs. */
  next(): number {
    const cap = backoffCapMs(this.attempt, this.initialMs, this.maxMs);
    this.attempt++;
    return Math.floor(this.random() * cap);
  }

  /**
   * A wait for a device the broker refuses (revoked, credential dead): uniform in
   * [maxMs/2, maxMs). Full jitter could draw ~0 and retry at once; a refused
   * device must not hammer the broker (nor its own battery), but it keeps trying
   * slowly because an operator may restore it.
   */
  refused(): number {
    this.attempt = Math.max(this.attempt, Math.ceil(Math.log2(this.maxMs / this.initialMs)) + 1);
    return Math.floor(this.maxMs / 2 + (this.random() * this.maxMs) / 2);
  }

  /** Call after a connection that worked: the next drop starts again from initialMs. */
  reset(): void {
    this.attempt = 0;
  }
}
