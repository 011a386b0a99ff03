import { Keyring } from '../tokens/index.js';
import type { BrokerContext } from './context.js';

/** setTimeout's ceiling (about 24.8 days): a later expiry is re-armed on the way. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** After a failed reload (registry busy or gone), the next try. */
const RETRY_MS = 1000;

/**
 * Keeps the running broker's keyring current without a restart: reloaded when
 * the change feed says the keys changed (`keys rotate`, `keys rotate --now`) and
 * at the instant the next retired key stops verifying. After each reload, every
 * token session whose signing key is gone is closed; its device comes back with
 * a token of the new key or through its refresh credential.
 * The CONNECT path never waits on this: it reads `ctx.issuer.keyring` as it is.
 */
export class KeyringRefresh {
  private timer: NodeJS.Timeout | null = null;
  /** Reloads started; only the latest one is applied (it read the registry last). */
  private started = 0;
  private closed = false;

  constructor(private readonly ctx: BrokerContext) {
    this.arm();
  }

  async reload(): Promise<void> {
    const seq = ++this.started;
    let failed = false;
    try {
      const keyring = await Keyring.load(this.ctx.issuer.reg);
      if (seq !== this.started || this.closed) return;
      this.ctx.issuer = { ...this.ctx.issuer, keyring };
      this.ctx.verifiedTokens.keysChanged(keyring.verifyKeys);
      const kicked = this.ctx.sessions.kickRetiredKeys(keyring.verifyKeys);
      this.ctx.log.info({ event: 'keys.reloaded', kids: [...keyring.verifyKeys.keys()], kicked }, 'signing keys reloaded');
    } catch (err) {
      failed = true;
      this.ctx.log.error({ event: 'keys.reload_failed', err: (err as Error).message }, 'signing keys reload failed');
    }
    if (seq === this.started) this.arm(failed);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** A timer for the next retired key's `verifyUntil` (or, after a failure, a retry soon). */
  private arm(retry = false): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const next = retry ? Date.now() + RETRY_MS : this.ctx.issuer.keyring.nextExpiry();
    if (next === null || this.closed) return;
    this.timer = setTimeout(() => void this.reload(), Math.min(Math.max(0, next - Date.now()), MAX_TIMER_MS));
    this.timer.unref();
  }
}
