import type { BrokerContext } from './context.js';
import { clearRetainedOf } from './retained.js';
import type { KeyringRefresh } from './keyring-refresh.js';

/**
 * Follows the registry's change feed so that `credbroker revoke` in another
 * process closes sessions within a second, with no admin API. Each tick costs one
 * `PRAGMA data_version` (it changes only when another connection has committed);
 * only then are the new change rows read.
 */
export class RevocationWatcher {
  private lastSeq: number;
  private dataVersion: number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly ctx: BrokerContext, private readonly keys: KeyringRefresh) {
    const { reg } = ctx.issuer;
    this.lastSeq = reg.changes.latest();
    this.dataVersion = this.readDataVersion();
    this.timer = setInterval(() => this.tick(), ctx.config.revocationPollMs);
    this.timer.unref();
  }

  private readDataVersion(): number {
    return this.ctx.issuer.reg.db.pragma('data_version', { simple: true }) as number;
  }

  tick(): void {
    try {
      const v = this.readDataVersion();
      if (v === this.dataVersion) return;
      this.dataVersion = v;
      this.apply();
    } catch (err) {
      this.ctx.log.error({ event: 'revocation.poll_failed', err: (err as Error).message }, 'change feed poll failed');
    }
  }

  private apply(): void {
    const { ctx } = this;
    const { reg } = ctx.issuer;
    for (const c of reg.changes.since(this.lastSeq)) {
      this.lastSeq = c.seq;
      if (ctx.config.weaken.ignoreRevocations && c.kind !== 'keys_rotated') continue;
      let closed: boolean | null = null; // set for a revocation: whether it closed a live session
      switch (c.kind) {
        case 'device_revoked':
          ctx.revocation.revokeDevice(c.deviceId!);
          closed = ctx.sessions.kickDevice(c.deviceId!, 'device_revoked');
          break;
        case 'token_revoked': {
          // `revoke --token` revokes the token's whole family (renewals included): the
          // entry names one jti, the registry holds which of its family are revoked and live.
          const named = reg.tokens.get(c.jti!);
          ctx.revocation.revokeToken(c.jti!, named?.expiresAt ?? Date.now() + 86_400_000);
          const members = named ? reg.tokens.revokedLiveOfFamily(named.family, Date.now()) : [];
          for (const m of members) ctx.revocation.revokeToken(m.jti, m.expiresAt);
          closed = ctx.sessions.kickTokens(c.deviceId!, new Set([c.jti!, ...members.map((m) => m.jti)]));
          break;
        }
        case 'grant_revoked': {
          const grant = reg.grants.get(c.jti!);
          ctx.revocation.revokeToken(c.jti!, grant?.expiresAt ?? Date.now() + 86_400_000);
          closed = ctx.sessions.kickTokens(c.deviceId!, new Set([c.jti!]), 'grant_revoked');
          break;
        }
        case 'retained_clear':
          clearRetainedOf(ctx, c.deviceId!);
          break;
        case 'device_restored': {
          const d = reg.devices.get(c.deviceId!);
          if (d) ctx.revocation.restoreDevice(d.id, d.tokensValidAfter);
          // Tokens revoked with the device stay dead after the restore.
          for (const t of reg.tokens.revokedLive(Date.now(), c.deviceId!)) ctx.revocation.revokeToken(t.jti, t.expiresAt);
          break;
        }
        case 'keys_rotated':
          void this.keys.reload();
          break;
        case 'device_deleted':
          ctx.revocation.forgetDevice(c.deviceId!, ctx.issuer.settings.maxTokenTtlMs, c.at);
          ctx.sessions.kickDevice(c.deviceId!, 'device_revoked');
          break;
      }
      if (closed === null) ctx.log.info({ event: 'registry.change', kind: c.kind, device: c.deviceId, seq: c.seq }, 'registry change applied');
      else ctx.log.info({ event: 'revocation.applied', kind: c.kind, device: c.deviceId, jti: c.jti, sessionClosed: closed, seq: c.seq }, 'revocation applied');
    }
    ctx.revocation.prune();
  }

  close(): void {
    clearInterval(this.timer);
  }
}
