/** A claim session's hold on its device id, until `release` (or its time runs out). */
export interface ClaimLock {
  /** Lets the id go, if this lock still holds it (idempotent). */
  release(): void;
}

/**
 * One claim session per device id (SPEC "Provisioning by claim"), decided
 * before CONNACK: a second claim CONNECT for a held id is refused, never a
 * takeover of the first. Alone, this process decides (LocalClaimLocks); on a bus,
 * every worker and node asks the same Redis (cluster/claim-locks.ts), through
 * startBroker's `claimLocks` option.
 */
export interface ClaimLocks {
  /**
   * The id's lock for `ttlMs` at most (a session that outlives it no longer
   * holds it), or null when another connection holds it.
   * @throws when it cannot be decided now (the bus unreachable): the CONNECT is refused
   */
  take(deviceId: string, ttlMs: number): Promise<ClaimLock | null>;
}

/**
 * The locks of one process. Memory is bounded by the live claim sessions: a
 * lock is deleted on release, and one whose time ran out is taken over as if free.
 */
export class LocalClaimLocks implements ClaimLocks {
  private readonly held = new Map<string, { until: number }>();

  take(deviceId: string, ttlMs: number): Promise<ClaimLock | null> {
    const now = Date.now();
    const cur = this.held.get(deviceId);
    if (cur && cur.until > now) return Promise.resolve(null);
    const mine = { until: now + ttlMs };
    this.held.set(deviceId, mine);
    return Promise.resolve({ release: () => { if (this.held.get(deviceId) === mine) this.held.delete(deviceId); } });
  }
}
