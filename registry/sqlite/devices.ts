import type { Db } from './db.js';
import type { DeviceId, ProfileName } from '../ids.js';
import { RegistryError } from '../../errors/index.js';
import type { Device, DeviceFilter, DeviceStatus, ProvisionedDevice } from '../types.js';
import { toDevice, type DeviceRow as Row } from '../rows.js';

export class Devices {
  private readonly db: Db;
  private readonly getStmt;
  private readonly insertStmt;
  private readonly revokeStmt;
  private readonly restoreStmt;
  private readonly touchStmt;
  private readonly deleteStmt;
  private readonly provisionTokenStmt;
  private readonly provisionRefreshStmt;
  private readonly provisionAuditStmt;
  constructor(db: Db) {
    this.db = db;
    // The same rows as IssuedTokens.record, RefreshCredentials.add and AuditLog.append write.
    this.provisionTokenStmt = db.prepare('INSERT INTO tokens (jti, device_id, kid, issued_at, expires_at, family) VALUES (?, ?, ?, ?, ?, ?)');
    this.provisionRefreshStmt = db.prepare(`INSERT INTO refresh_credentials (hash, device_id, state, issued_at, expires_at) VALUES (?, ?, 'current', ?, ?)`);
    this.provisionAuditStmt = db.prepare(`INSERT INTO audit (at, actor, action, device_id, details) VALUES (?, ?, 'device.provision', ?, ?)`);
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM devices WHERE id = ?');
    this.insertStmt = db.prepare(
      `INSERT INTO devices (id, profile, status, credential_expires_at, created_at, simulation) VALUES (?, ?, 'active', ?, ?, ?)`,
    );
    this.deleteStmt = db.prepare('DELETE FROM devices WHERE id = ?');
    this.revokeStmt = db.prepare(
      `UPDATE devices SET status = 'revoked', revoked_reason = ?, revoked_at = ? WHERE id = ? AND status = 'active'`,
    );
    this.restoreStmt = db.prepare(
      `UPDATE devices SET status = 'active', revoked_reason = NULL, revoked_at = NULL, tokens_valid_after = ? WHERE id = ? AND status = 'revoked'`,
    );
    this.touchStmt = db.prepare('UPDATE devices SET last_seen_at = ? WHERE id = ?');
  }

  get(id: string): Device | undefined {
    const row = this.getStmt.get(id);
    return row && toDevice(row);
  }

  /** @throws RegistryError `ERR_DEVICE_NOT_FOUND` */
  require(id: string): Device {
    const d = this.get(id);
    if (!d) throw new RegistryError('ERR_DEVICE_NOT_FOUND', `no device "${id}" in the registry (see: credbroker devices)`);
    return d;
  }

  insert(id: DeviceId, profile: ProfileName, credentialExpiresAt: number, now: number, simulation = false): void {
    this.insertStmt.run(id, profile, credentialExpiresAt, now, simulation ? 1 : 0);
  }

  /** Removes the device row; its tokens and refresh credentials must be gone first (foreign keys). */
  delete(id: DeviceId): boolean {
    return this.deleteStmt.run(id).changes > 0;
  }

  /** Which of `ids` are already registered (one query per 500 ids). */
  existing(ids: readonly string[]): Set<string> {
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const rows = this.db.prepare(`SELECT id FROM devices WHERE id IN (${chunk.map(() => '?').join(',')})`).pluck().all(...chunk) as string[];
      for (const id of rows) found.add(id);
    }
    return found;
  }

  /** Ordered by id. A prefix and a cursor are ranges on the primary key, so a page costs its own size. */
  list(filter: DeviceFilter = {}): Device[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.status) { where.push('status = ?'); args.push(filter.status); }
    if (filter.profile) { where.push('profile = ?'); args.push(filter.profile); }
    if (filter.prefix) {
      // Ids are ASCII below DEL, so every id with the prefix sorts before prefix + DEL.
      where.push('id >= ? AND id < ?');
      args.push(filter.prefix, `${filter.prefix}\u007f`);
    }
    if (filter.after !== undefined) { where.push('id > ?'); args.push(filter.after); }
    const limit = filter.limit ?? null;
    const sql = `SELECT * FROM devices ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id${limit === null ? '' : ' LIMIT ?'}`;
    if (limit !== null) args.push(limit);
    return (this.db.prepare(sql).all(...args) as Row[]).map(toDevice);
  }

  /** @returns false when the device was already revoked. */
  revoke(id: DeviceId, reason: string, now: number): boolean {
    return this.revokeStmt.run(reason, now, id).changes > 0;
  }

  /** @returns false when the device was not revoked. */
  restore(id: DeviceId, now: number): boolean {
    return this.restoreStmt.run(Math.floor(now / 1000), id).changes > 0;
  }

  setProfile(id: DeviceId, profile: ProfileName): boolean {
    return this.db.prepare<[string, string]>('UPDATE devices SET profile = ? WHERE id = ?').run(profile, id).changes > 0;
  }

  /** Number of devices per profile name (profiles with none are absent). */
  countByProfile(): Map<string, number> {
    const rows = this.db.prepare<[], { profile: string; n: number }>('SELECT profile, count(*) AS n FROM devices GROUP BY profile').all();
    return new Map(rows.map((r) => [r.profile, r.n]));
  }

  /** Number of devices by status. */
  countByStatus(): Record<DeviceStatus, number> {
    const out: Record<DeviceStatus, number> = { active: 0, revoked: 0 };
    for (const r of this.db.prepare<[], { status: DeviceStatus; n: number }>('SELECT status, count(*) AS n FROM devices GROUP BY status').all()) out[r.status] = r.n;
    return out;
  }

  touch(id: DeviceId, now: number): void {
    this.touchStmt.run(now, id);
  }

  touchMany(seen: ReadonlyMap<DeviceId, number>): void {
    for (const [id, at] of seen) this.touchStmt.run(at, id);
  }

  /** Inserts provisioned devices with their first token, refresh credential and audit row; call inside a write. */
  provision(rows: readonly ProvisionedDevice[], now: number): void {
    for (const r of rows) {
      this.insert(r.deviceId, r.profile, r.credentialExpiresAt, now, r.simulation);
      this.provisionTokenStmt.run(r.token.jti, r.deviceId, r.token.kid, r.token.issuedAt, r.token.expiresAt, r.token.jti);
      this.provisionRefreshStmt.run(r.refreshHash, r.deviceId, now, r.credentialExpiresAt);
      this.provisionAuditStmt.run(now, r.actor ?? 'cli', r.deviceId, JSON.stringify({ profile: r.profile, jti: r.token.jti, ...r.auditDetails }));
    }
  }

  /** Devices whose state the broker must hold in memory: revoked, or restored with a token cut-off. */
  restrictions(): Pick<Device, 'id' | 'status' | 'tokensValidAfter'>[] {
    return this.db
      .prepare<[], Row>(`SELECT id, status, tokens_valid_after FROM devices WHERE status = 'revoked' OR tokens_valid_after > 0`)
      .all()
      .map((r) => ({ id: r.id as DeviceId, status: r.status, tokensValidAfter: r.tokens_valid_after }));
  }
}
