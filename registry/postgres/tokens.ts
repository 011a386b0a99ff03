import type { DeviceId, Jti, Kid } from '../ids.js';
import type { TokenStore } from '../interface.js';
import type { IssuedToken, NewToken, RevokedToken } from '../types.js';
import type { Sql } from './pool.js';
import { toRevoked, toToken, type TokenRow as Row } from '../rows.js';

export class PgTokens implements TokenStore {
  constructor(private readonly sql: Sql) {}

  async record(t: NewToken): Promise<void> {
    await this.sql.write('INSERT INTO tokens (jti, device_id, kid, issued_at, expires_at, family) VALUES ($1, $2, $3, $4, $5, $6)',
      [t.jti, t.deviceId, t.kid, t.issuedAt, t.expiresAt, t.family ?? t.jti]);
  }

  async get(jti: string): Promise<IssuedToken | undefined> {
    const [row] = await this.sql.rows<Row>('SELECT * FROM tokens WHERE jti = $1', [jti]);
    return row && toToken(row);
  }

  async revoke(jti: Jti, now: number): Promise<boolean> {
    return (await this.sql.run('UPDATE tokens SET revoked_at = $1 WHERE jti = $2 AND revoked_at IS NULL', [now, jti])) > 0;
  }

  async revokeFamily(family: Jti, now: number): Promise<RevokedToken[]> {
    return (await this.sql.rows<{ jti: string; expires_at: number }>(
      'UPDATE tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL RETURNING jti, expires_at', [now, family])).map(toRevoked);
  }

  async revokedLiveOfFamily(family: Jti, now: number): Promise<RevokedToken[]> {
    return (await this.sql.rows<{ jti: string; expires_at: number }>(
      'SELECT jti, expires_at FROM tokens WHERE family = $1 AND revoked_at IS NOT NULL AND expires_at > $2', [family, now])).map(toRevoked);
  }

  async revokeAllOf(deviceId: DeviceId, now: number): Promise<Jti[]> {
    return (await this.sql.rows<{ jti: string }>(
      'UPDATE tokens SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL AND expires_at > $1 RETURNING jti', [now, deviceId]))
      .map((r) => r.jti as Jti);
  }

  async liveFor(deviceId: DeviceId, now: number): Promise<IssuedToken[]> {
    return (await this.sql.rows<Row>(
      'SELECT * FROM tokens WHERE device_id = $1 AND expires_at > $2 AND revoked_at IS NULL ORDER BY issued_at', [deviceId, now])).map(toToken);
  }

  async revokedLive(now: number, deviceId?: string): Promise<RevokedToken[]> {
    const rows = deviceId === undefined
      ? await this.sql.rows<{ jti: string; expires_at: number }>('SELECT jti, expires_at FROM tokens WHERE revoked_at IS NOT NULL AND expires_at > $1', [now])
      : await this.sql.rows<{ jti: string; expires_at: number }>(
        'SELECT jti, expires_at FROM tokens WHERE device_id = $1 AND revoked_at IS NOT NULL AND expires_at > $2', [deviceId, now]);
    return rows.map(toRevoked);
  }

  /** See the SQLite store: a family's expired records stay while a member is live, until `familyBefore`. */
  async pruneExpired(before: number, limit: number, familyBefore = before): Promise<number> {
    return this.sql.run(`DELETE FROM tokens WHERE jti IN (
      SELECT t.jti FROM tokens t WHERE t.expires_at < $1
        AND (t.expires_at < $2 OR NOT EXISTS (SELECT 1 FROM tokens f WHERE f.family = t.family AND f.expires_at >= $1))
      LIMIT $3)`, [before, familyBefore, limit]);
  }

  async lastExpiryOfDevice(deviceId: DeviceId): Promise<number | null> {
    const [r] = await this.sql.rows<{ m: number | null }>('SELECT max(expires_at) AS m FROM tokens WHERE device_id = $1', [deviceId]);
    return r?.m ?? null;
  }

  async deleteAllOf(deviceId: DeviceId): Promise<number> {
    return this.sql.run('DELETE FROM tokens WHERE device_id = $1', [deviceId]);
  }

  async lastExpiryOf(kid: Kid): Promise<number | null> {
    const [r] = await this.sql.rows<{ m: number | null }>('SELECT max(expires_at) AS m FROM tokens WHERE kid = $1', [kid]);
    return r?.m ?? null;
  }
}
