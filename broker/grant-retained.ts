import type { Session } from './session.js';

/** setTimeout's longest delay; a grant lives at most a day, so this only guards a bad clock. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * The ledger's owner of a session's retained publishes: a device, or one grant
 * by its token (`grant:NAME#jti`, never a device id), so that revoking that
 * grant, or its expiry, clears what it published (as revoking a device does)
 * and a later grant of the same name is not charged for it.
 */
export function retainedOwner(deviceId: string, grantJti: string | null): string {
  return grantJti === null ? deviceId : `${deviceId}#${grantJti}`;
}

export function retainedOwnerOf(s: Session): string {
  return retainedOwner(s.deviceId, s.kind === 'grant' ? s.jti : null);
}

/**
 * Clears a grant's retained messages when its token expires, connected or not:
 * one timer per grant that has retained something (grants are few and live a day at most).
 */
export class GrantRetainedExpiry {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** `clear`: clears what an owner has retained (retained.ts `clearRetainedOf`). */
  constructor(private readonly clear: (owner: string) => void) {}

  /** After a grant session's retained publish was kept. */
  watch(s: Session): void {
    const owner = retainedOwnerOf(s);
    if (this.timers.has(owner)) return;
    const timer = setTimeout(() => {
      this.timers.delete(owner);
      this.clear(owner);
    }, Math.min(MAX_DELAY_MS, Math.max(0, s.expiresAt - Date.now())));
    timer.unref();
    this.timers.set(owner, timer);
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
