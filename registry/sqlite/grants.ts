import type { Db } from './db.js';
import type { GrantName } from '../ids.js';
import type { Grant, NewGrant, RevokedToken } from '../types.js';
import { toGrant, toRevoked, type GrantRow as Row } from '../rows.js';

/** One row per grant token minted; a name may be granted again once its earlier grant is over. */
export class Grants {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly liveOfStmt;
  private readonly latestOfStmt;
  private readonly listStmt;
  private readonly listLiveStmt;
  private readonly revokeStmt;
  private readonly revokedLiveStmt;
  private readonly pruneStmt;
  constructor(db: Db) {
    this.insertStmt = db.prepare(`INSERT INTO grants (jti, name, publish, subscribe, reason, within, kid, issued_at, expires_at)
      VALUES (@jti, @name, @publish, @subscribe, @reason, @within, @kid, @issuedAt, @expiresAt)`);
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM grants WHERE jti = ?');
    this.liveOfStmt = db.prepare<[string, number], Row>('SELECT * FROM grants WHERE name = ? AND expires_at > ? AND revoked_at IS NULL');
    this.latestOfStmt = db.prepare<[string], Row>('SELECT * FROM grants WHERE name = ? ORDER BY issued_at DESC LIMIT 1');
    this.listStmt = db.prepare<[], Row>('SELECT * FROM grants ORDER BY name, issued_at');
    this.listLiveStmt = db.prepare<[number], Row>('SELECT * FROM grants WHERE expires_at > ? AND revoked_at IS NULL ORDER BY name, issued_at');
    this.revokeStmt = db.prepare<[number, string, number], Row>('UPDATE grants SET revoked_at = ? WHERE name = ? AND expires_at > ? AND revoked_at IS NULL RETURNING *');
    this.revokedLiveStmt = db.prepare<[number], { jti: string; expires_at: number }>('SELECT jti, expires_at FROM grants WHERE revoked_at IS NOT NULL AND expires_at > ?');
    this.pruneStmt = db.prepare<[number, number]>('DELETE FROM grants WHERE jti IN (SELECT jti FROM grants WHERE expires_at < ? LIMIT ?)');
  }

  record(g: NewGrant): void {
    this.insertStmt.run({ ...g, publish: JSON.stringify(g.publish), subscribe: JSON.stringify(g.subscribe) });
  }

  get(jti: string): Grant | undefined {
    const row = this.getStmt.get(jti);
    return row && toGrant(row);
  }

  /** The grant of this name that is neither expired nor revoked, if any (at most one: minting refuses a second). */
  liveOf(name: GrantName, now: number): Grant | undefined {
    const row = this.liveOfStmt.get(name, now);
    return row && toGrant(row);
  }

  /** The last grant minted under this name, live or not. */
  latestOf(name: GrantName): Grant | undefined {
    const row = this.latestOfStmt.get(name);
    return row && toGrant(row);
  }

  /** Every grant on record (or only the live ones), by name then issue time. */
  list(opts: { activeAt?: number } = {}): Grant[] {
    return (opts.activeAt === undefined ? this.listStmt.all() : this.listLiveStmt.all(opts.activeAt)).map(toGrant);
  }

  /** Revokes the live grant of this name; returns it (none when there was nothing live). */
  revokeLive(name: GrantName, now: number): Grant[] {
    return this.revokeStmt.all(now, name, now).map(toGrant);
  }

  /** Revoked grants whose token has not expired: the broker's deny list at start. */
  revokedLive(now: number): RevokedToken[] {
    return this.revokedLiveStmt.all(now).map(toRevoked);
  }

  /** Deletes up to `limit` grants that expired before `before` (ms); the audit log keeps its own rows. */
  pruneExpired(before: number, limit: number): number {
    return this.pruneStmt.run(before, limit).changes;
  }
}
