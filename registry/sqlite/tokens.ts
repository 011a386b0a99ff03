import type { Db } from './db.js';
import type { DeviceId, Jti, Kid } from '../ids.js';
import type { IssuedToken } from '../types.js';
import { toRevoked, toToken, type TokenRow as Row } from '../rows.js';

export class IssuedTokens {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly revokeStmt;
  private readonly revokeDeviceStmt;
  private readonly liveStmt;
  private readonly revokedLiveStmt;
  private readonly maxExpStmt;
  private readonly revokedLiveOfStmt;
  private readonly pruneStmt;
  private readonly lastExpiryOfDeviceStmt;
  private readonly deleteDeviceStmt;
  private readonly revokeFamilyStmt;
  private readonly revokedLiveOfFamilyStmt;
  constructor(db: Db) {
    // A record of a family with a live member stays (revoke --token by its jti reaches that member) until familyBefore.
    this.pruneStmt = db.prepare<[{ before: number; familyBefore: number; limit: number }]>(`DELETE FROM tokens WHERE jti IN (
      SELECT t.jti FROM tokens t WHERE t.expires_at < @before
        AND (t.expires_at < @familyBefore OR NOT EXISTS (SELECT 1 FROM tokens f WHERE f.family = t.family AND f.expires_at >= @before))
      LIMIT @limit)`);
    this.lastExpiryOfDeviceStmt = db.prepare<[string], { m: number | null }>('SELECT max(expires_at) AS m FROM tokens WHERE device_id = ?');
    this.deleteDeviceStmt = db.prepare('DELETE FROM tokens WHERE device_id = ?');
    this.revokedLiveOfStmt = db.prepare<[string, number], { jti: string; expires_at: number }>('SELECT jti, expires_at FROM tokens WHERE device_id = ? AND revoked_at IS NOT NULL AND expires_at > ?');
    this.insertStmt = db.prepare('INSERT INTO tokens (jti, device_id, kid, issued_at, expires_at, family) VALUES (?, ?, ?, ?, ?, ?)');
    this.revokeFamilyStmt = db.prepare<[number, string], { jti: string; expires_at: number }>('UPDATE tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL RETURNING jti, expires_at');
    this.revokedLiveOfFamilyStmt = db.prepare<[string, number], { jti: string; expires_at: number }>('SELECT jti, expires_at FROM tokens WHERE family = ? AND revoked_at IS NOT NULL AND expires_at > ?');
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM tokens WHERE jti = ?');
    this.revokeStmt = db.prepare('UPDATE tokens SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL');
    this.revokeDeviceStmt = db.prepare<[number, string, number]>('UPDATE tokens SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL AND expires_at > ? RETURNING jti');
    this.liveStmt = db.prepare<[string, number], Row>('SELECT * FROM tokens WHERE device_id = ? AND expires_at > ? AND revoked_at IS NULL ORDER BY issued_at');
    this.revokedLiveStmt = db.prepare<[number], { jti: string; expires_at: number }>('SELECT jti, expires_at FROM tokens WHERE revoked_at IS NOT NULL AND expires_at > ?');
    this.maxExpStmt = db.prepare<[string], { m: number | null }>('SELECT max(expires_at) AS m FROM tokens WHERE kid = ?');
  }

  /** Records a minted token; without `family` it starts a family of its own. */
  record(t: Omit<IssuedToken, 'revokedAt' | 'family'> & { family?: Jti }): void {
    this.insertStmt.run(t.jti, t.deviceId, t.kid, t.issuedAt, t.expiresAt, t.family ?? t.jti);
  }

  get(jti: string): IssuedToken | undefined {
    const row = this.getStmt.get(jti);
    return row && toToken(row);
  }

  /** @returns false when unknown or already revoked. */
  revoke(jti: Jti, now: number): boolean {
    return this.revokeStmt.run(now, jti).changes > 0;
  }

  /** Revokes every not yet revoked token of a family; returns them. */
  revokeFamily(family: Jti, now: number): { jti: Jti; expiresAt: number }[] {
    return this.revokeFamilyStmt.all(now, family).map(toRevoked);
  }

  /** The revoked tokens of a family that have not expired yet: what the broker must refuse. */
  revokedLiveOfFamily(family: Jti, now: number): { jti: Jti; expiresAt: number }[] {
    return this.revokedLiveOfFamilyStmt.all(family, now).map(toRevoked);
  }

  /** Revokes every live token of a device; returns their jtis. */
  revokeAllOf(deviceId: DeviceId, now: number): Jti[] {
    return (this.revokeDeviceStmt.all(now, deviceId, now) as { jti: string }[]).map((r) => r.jti as Jti);
  }

  liveFor(deviceId: DeviceId, now: number): IssuedToken[] {
    return this.liveStmt.all(deviceId, now).map(toToken);
  }

  /**
   * Revoked tokens that have not expired yet — all of them (the broker's in-memory
   * deny list at start) or one device's (what a restore must keep dead).
   */
  revokedLive(now: number, deviceId?: string): { jti: Jti; expiresAt: number }[] {
    const rows = deviceId === undefined ? this.revokedLiveStmt.all(now) : this.revokedLiveOfStmt.all(deviceId, now);
    return rows.map(toRevoked);
  }

  /**
   * Deletes up to `limit` records of tokens that expired before `before` (ms): no
   * verifier accepts them any more, so neither revocation nor an audit needs
   * them (the audit log keeps its own rows) — except while another token of the
   * same family is live: `revoke --token` with the jti of a leaked, since expired
   * token must still reach the renewals made from it. Those are kept until they
   * expired before `familyBefore`, which bounds the records of a device that stays
   * online and renews for years. Returns how many went.
   */
  pruneExpired(before: number, limit: number, familyBefore = before): number {
    return this.pruneStmt.run({ before, familyBefore, limit }).changes;
  }

  /** When the device's last token expires (ms), or null when it has none. */
  lastExpiryOfDevice(deviceId: DeviceId): number | null {
    return this.lastExpiryOfDeviceStmt.get(deviceId)?.m ?? null;
  }

  /** Forgets every token record of a device (deleting it). */
  deleteAllOf(deviceId: DeviceId): number {
    return this.deleteDeviceStmt.run(deviceId).changes;
  }

  /** When the last token signed by `kid` expires (ms), or null. */
  lastExpiryOf(kid: Kid): number | null {
    return this.maxExpStmt.get(kid)?.m ?? null;
  }
}
