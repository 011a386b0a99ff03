import type { Change, ChangeFollower } from '../registry/index.js';
import type { BrokerContext } from './context.js';
import { clearRetainedOf } from './retained.js';
import { retainedOwner } from './grant-retained.js';
import type { KeyringRefresh } from './keyring-refresh.js';

/**
 * Follows the registry's change feed (`changes.follow`) so that `credbroker
 * revoke` in another process, on this host or another, closes sessions within a
 * second, with no admin API. The engine says how: SQLite polls every
 * `revocationPollMs`, PostgreSQL is notified and catches up by sequence number
 * after a lost connection. No change is skipped: a batch that fails is read again.
 */
export class RevocationWatcher {
  private readonly follower: ChangeFollower;
  private failing = false;

  /** `fromSeq`: the feed's position read before the in-memory state was loaded, so nothing in between is missed. */
  constructor(private readonly ctx: BrokerContext, private readonly keys: KeyringRefresh, fromSeq: number) {
    this.follower = ctx.issuer.reg.changes.follow(fromSeq, (changes) => this.apply(changes), {
      pollMs: ctx.config.revocationPollMs,
      onError: (err) => {
        if (this.failing) return; // one line per outage, not one per poll
        this.failing = true;
        ctx.log.error({ event: 'revocation.poll_failed', err: (err as Error).message }, 'change feed unreadable; retrying');
      },
      onRecover: () => {
        this.failing = false;
        ctx.log.info({ event: 'revocation.poll_recovered', seq: this.follower.position }, 'change feed readable again; caught up');
      },
    });
  }

  private async apply(changes: readonly Change[]): Promise<void> {
    if (this.ctx.weaken.ignoreChangeFeed) return;
    for (const c of changes) await this.applyOne(c);
    this.ctx.revocation.prune();
  }

  private async applyOne(c: Change): Promise<void> {
    const { ctx } = this;
    const { reg } = ctx.issuer;
    if (ctx.weaken.ignoreRevocations && c.kind !== 'keys_rotated') return;
    let closed: boolean | null = null; // set for a revocation: whether it closed a live session
    switch (c.kind) {
      case 'device_revoked':
        ctx.revocation.revokeDevice(c.deviceId!);
        closed = ctx.sessions.kickDevice(c.deviceId!, 'device_revoked');
        break;
      case 'token_revoked': {
        // `revoke --token` revokes the token's whole family (renewals included): the
        // entry names one jti, the registry holds which of its family are revoked and live.
        // The named jti is refused at once, before the family is read.
        ctx.revocation.revokeToken(c.jti!, Date.now() + 86_400_000);
        const named = await reg.tokens.get(c.jti!);
        if (named) ctx.revocation.revokeToken(c.jti!, named.expiresAt);
        const members = named ? await reg.tokens.revokedLiveOfFamily(named.family, Date.now()) : [];
        for (const m of members) ctx.revocation.revokeToken(m.jti, m.expiresAt);
        closed = ctx.sessions.kickTokens(c.deviceId!, new Set([c.jti!, ...members.map((m) => m.jti)]));
        break;
      }
      case 'grant_revoked': {
        ctx.revocation.revokeToken(c.jti!, Date.now() + 86_400_000);
        const grant = await reg.grants.get(c.jti!);
        if (grant) ctx.revocation.revokeToken(c.jti!, grant.expiresAt);
        closed = ctx.sessions.kickTokens(c.deviceId!, new Set([c.jti!]), 'grant_revoked');
        clearRetainedOf(ctx, retainedOwner(c.deviceId!, c.jti!));
        break;
      }
      case 'retained_clear':
        clearRetainedOf(ctx, c.deviceId!);
        break;
      case 'device_restored': {
        const d = await reg.devices.get(c.deviceId!);
        if (d) ctx.revocation.restoreDevice(d.id, d.tokensValidAfter);
        // Tokens revoked with the device stay dead after the restore.
        for (const t of await reg.tokens.revokedLive(Date.now(), c.deviceId!)) ctx.revocation.revokeToken(t.jti, t.expiresAt);
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

  close(): Promise<void> {
    return this.follower.close();
  }
}
