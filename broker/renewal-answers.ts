import type { Jti, Kid } from '../registry/index.js';
import type { AclClaim } from '../tokens/index.js';
import type { Session } from './session.js';

/** An accepted renewal: what the device was sent, and what the session adopted. */
export interface AcceptedRenewal {
  readonly jti: Jti;
  /** The key that signed it: the session is closed if that key dies. */
  readonly kid: Kid;
  readonly expiresAt: number;
  readonly acl: AclClaim;
  /** Hash of the refresh credential handed out with it (refresh sessions), else null. */
  readonly refreshHash: string | null;
  /** The session that asked, and the credential it asked with (token jti, or refresh credential hash). */
  readonly session: Session;
  readonly from: string | null;
  /** The `…/token/accepted` payload, sent again as it was. */
  readonly body: Readonly<Record<string, unknown>>;
}

/**
 * Renewal answers by device, session kind and requestId, kept for a short window
 * so that a request re-sent with the same requestId (the device lost the answer,
 * or timed out waiting for it) gets the same answer again and no second token is
 * minted. A request still in progress is shared: the repeat waits for its outcome
 * (null when it was rejected). Bounded by count: past `maxEntries` the oldest
 * entry goes first, and `onEvict` counts it (a window that is too short for the
 * renewal rate of the fleet, or a flood of distinct requestIds).
 */
export class RenewalAnswers {
  private readonly entries = new Map<string, { readonly at: number; readonly outcome: Promise<AcceptedRenewal | null> }>();

  constructor(private readonly opts: { windowMs: number; maxEntries: number; onEvict: () => void }) {}

  static key(deviceId: string, kind: string, requestId: string): string {
    return `${deviceId}\n${kind}\n${requestId}`;
  }

  /** The outcome of an earlier request with this key within the window, if any. */
  get(key: string, now = Date.now()): Promise<AcceptedRenewal | null> | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (now - e.at > this.opts.windowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.outcome;
  }

  set(key: string, outcome: Promise<AcceptedRenewal | null>, now = Date.now()): void {
    this.entries.delete(key);
    // Oldest first (Map keeps insertion order): expired entries, then any over the bound.
    for (const [k, e] of this.entries) {
      if (now - e.at <= this.opts.windowMs && this.entries.size < this.opts.maxEntries) break;
      if (now - e.at <= this.opts.windowMs) this.opts.onEvict();
      this.entries.delete(k);
    }
    if (this.opts.maxEntries > 0) this.entries.set(key, { at: now, outcome });
  }

  /** Forgets `key` if it still holds `outcome` (a newer request under the same key stays). */
  forget(key: string, outcome: Promise<AcceptedRenewal | null>): void {
    if (this.entries.get(key)?.outcome === outcome) this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
