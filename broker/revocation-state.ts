import type { DeviceId, Stores } from '../registry/index.js';
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
  /**
   * Deleted devices: tokens issued before the deletion stay refused (a new device
   * may take the id) until `forgetAt`, when the longest token could have expired.
   */
  private readonly deleted = new Map<string, { cutoffSec: number; forgetAt: number }>();

  async load(reg: Stores, now = Date.now()): Promise<void> {
    for (const d of await reg.devices.restrictions()) {
      if (d.status === 'revoked') this.revokedDevices.add(d.id);
      if (d.tokensValidAfter > 0) this.validAfter.set(d.id, d.tokensValidAfter);
    }
    for (const t of [...await reg.tokens.revokedLive(now), ...await reg.grants.revokedLive(now)]) this.revokedJtis.set(t.jti, t.expiresAt);
  }

  revokeDevice(id: string): void {
    this.revokedDevices.add(id);
  }

  restoreDevice(id: string, validAfterSec: number): void {
    this.revokedDevices.delete(id);
    this.validAfter.set(id, validAfterSec);
  }

  /**
   * A device deleted from the registry (`devices delete`, a simulation's clean-up):
   * it no longer needs a place among the revoked, but any token issued up to the
   * deletion is refused until `maxTokenTtlMs` has passed.
   */
  forgetDevice(id: string, maxTokenTtlMs: number, now = Date.now()): void {
    this.revokedDevices.delete(id);
    this.validAfter.delete(id);
    // iat has whole seconds: a token minted in the very second of the deletion is not caught here, and none
    // can be: a deleted device was revoked first, or was a simulation device whose tokens only its ended run held.
    this.deleted.set(id, { cutoffSec: Math.floor(now / 1000), forgetAt: now + maxTokenTtlMs + 60_000 });
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
    const deleted = this.deleted.get(claims.sub);
    if (deleted !== undefined && claims.iat < deleted.cutoffSec) return 'device_revoked';
    return null;
  }

  /** Forgets revoked tokens that have expired: they are refused as expired now. */
  prune(now = Date.now()): void {
    for (const [jti, exp] of this.revokedJtis) if (exp + 60_000 < now) this.revokedJtis.delete(jti);
    for (const [id, d] of this.deleted) if (d.forgetAt < now) this.deleted.delete(id);
  }
}
