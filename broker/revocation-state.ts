import type { DeviceId, Registry } from '../registry/index.js';
import type { AccessTokenClaims } from '../tokens/index.js';

/**
 * What the broker must know on every CONNECT that only the registry can say —
 * revoked devices, revoked tokens, restore cut-offs — held in memory, loaded once
 * at start and kept current from the change feed. No per-connect query.
 */
export class RevocationState {
  private readonly revokedDevices = new Set<string>();
  /** jti → expiry (ms), so entries can be dropped once the token is dead anyway. */
  private readonly revokedJtis = new Map<string, number>();
  /** device → iat cut-off (s) set by `restore`. */
  private readonly validAfter = new Map<string, number>();

  load(reg: Registry, now = Date.now()): void {
    for (const d of reg.devices.restrictions()) {
      if (d.status === 'revoked') this.revokedDevices.add(d.id);
      if (d.tokensValidAfter > 0) this.validAfter.set(d.id, d.tokensValidAfter);
    }
    for (const t of reg.tokens.revokedLive(now)) this.revokedJtis.set(t.jti, t.expiresAt);
  }

  revokeDevice(id: string): void {
    this.revokedDevices.add(id);
  }

  restoreDevice(id: string, validAfterSec: number): void {
    this.revokedDevices.delete(id);
    this.validAfter.set(id, validAfterSec);
  }

  revokeToken(jti: string, expiresAt: number): void {
    this.revokedJtis.set(jti, expiresAt);
  }

  isDeviceRevoked(id: DeviceId | string): boolean {
    return this.revokedDevices.has(id);
  }

  isTokenRevoked(jti: string): boolean {
    return this.revokedJtis.has(jti);
  }

  /** Why a verified token may not be used, or null when it may. */
  refusal(claims: Pick<AccessTokenClaims, 'sub' | 'jti' | 'iat'>): 'device_revoked' | 'token_revoked' | null {
    if (this.revokedDevices.has(claims.sub)) return 'device_revoked';
    if (this.isTokenRevoked(claims.jti)) return 'token_revoked';
    const cutoff = this.validAfter.get(claims.sub);
    if (cutoff !== undefined && claims.iat < cutoff) return 'token_revoked';
    return null;
  }

  /** Forgets revoked tokens that have expired: they are refused as expired now. */
  prune(now = Date.now()): void {
    for (const [jti, exp] of this.revokedJtis) if (exp + 60_000 < now) this.revokedJtis.delete(jti);
  }
}
