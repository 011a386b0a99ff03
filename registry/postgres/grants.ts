import type { GrantName } from '../ids.js';
import type { GrantStore } from '../interface.js';
import type { Grant, NewGrant, RevokedToken } from '../types.js';
import { LOCKS } from './migrations.js';
import type { Sql } from './pool.js';
import { toGrant, toRevoked, type GrantRow as Row } from '../rows.js';

/** The twin of registry/grants.ts. */
export class PgGrants implements GrantStore {
  constructor(private readonly sql: Sql) {}

  async record(g: NewGrant): Promise<void> {
    await this.sql.run(`INSERT INTO grants (jti, name, publish, subscribe, reason, within, kid, issued_at, expires_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [g.jti, g.name, JSON.stringify(g.publish), JSON.stringify(g.subscribe), g.reason, g.within, g.kid, g.issuedAt, g.expiresAt]);
  }

  async get(jti: string): Promise<Grant | undefined> {
    const [row] = await this.sql.rows<Row>('SELECT * FROM grants WHERE jti = $1', [jti]);
    return row && toGrant(row);
  }

  /**
   * In a transaction this first locks the name until it ends, so that two
   * operators granting one NAME at once are serialized as on SQLite (BEGIN
   * IMMEDIATE): the second sees the first one's grant. READ COMMITTED alone
   * would let both find none live and both insert.
   */
  async liveOf(name: GrantName, now: number): Promise<Grant | undefined> {
    if (this.sql.inTransaction) await this.sql.run(`SELECT pg_advisory_xact_lock(${LOCKS.grantName}, hashtext($1))`, [name]);
    const [row] = await this.sql.rows<Row>('SELECT * FROM grants WHERE name = $1 AND expires_at > $2 AND revoked_at IS NULL', [name, now]);
    return row && toGrant(row);
  }

  async latestOf(name: GrantName): Promise<Grant | undefined> {
    const [row] = await this.sql.rows<Row>('SELECT * FROM grants WHERE name = $1 ORDER BY issued_at DESC LIMIT 1', [name]);
    return row && toGrant(row);
  }

  async list(opts: { activeAt?: number } = {}): Promise<Grant[]> {
    const rows = opts.activeAt === undefined
      ? await this.sql.rows<Row>('SELECT * FROM grants ORDER BY name, issued_at')
      : await this.sql.rows<Row>('SELECT * FROM grants WHERE expires_at > $1 AND revoked_at IS NULL ORDER BY name, issued_at', [opts.activeAt]);
    return rows.map(toGrant);
  }

  async revokeLive(name: GrantName, now: number): Promise<Grant[]> {
    return (await this.sql.rows<Row>(
      'UPDATE grants SET revoked_at = $1 WHERE name = $2 AND expires_at > $1 AND revoked_at IS NULL RETURNING *', [now, name])).map(toGrant);
  }

  async revokedLive(now: number): Promise<RevokedToken[]> {
    return (await this.sql.rows<{ jti: string; expires_at: number }>(
      'SELECT jti, expires_at FROM grants WHERE revoked_at IS NOT NULL AND expires_at > $1', [now])).map(toRevoked);
  }

  async pruneExpired(before: number, limit: number): Promise<number> {
    return this.sql.run('DELETE FROM grants WHERE jti IN (SELECT jti FROM grants WHERE expires_at < $1 LIMIT $2)', [before, limit]);
  }
}
