import type { Db } from './db.js';
import type { DeviceId } from '../ids.js';
import type { RefreshRecord, RefreshState } from '../types.js';
import { toRefresh, type RefreshRow as Row } from '../rows.js';

export class RefreshCredentials {
  private readonly insertStmt;
  private readonly findStmt;
  private readonly setStateStmt;
  private readonly demoteStmt;
  private readonly revokeDeviceStmt;
  private readonly forDeviceStmt;
  private readonly deleteDeviceStmt;
  constructor(db: Db) {
    this.forDeviceStmt = db.prepare<[string], Row>('SELECT * FROM refresh_credentials WHERE device_id = ? ORDER BY issued_at DESC, rowid DESC');
    this.insertStmt = db.prepare(`INSERT INTO refresh_credentials (hash, device_id, state, issued_at, expires_at) VALUES (?, ?, 'current', ?, ?)`);
    this.findStmt = db.prepare<[string], Row>('SELECT * FROM refresh_credentials WHERE hash = ?');
    this.setStateStmt = db.prepare('UPDATE refresh_credentials SET state = ?, used_at = coalesce(?, used_at) WHERE hash = ?');
    this.demoteStmt = db.prepare(`UPDATE refresh_credentials SET state = 'superseded' WHERE device_id = ? AND state = ? AND hash <> ?`);
    this.deleteDeviceStmt = db.prepare('DELETE FROM refresh_credentials WHERE device_id = ?');
    this.revokeDeviceStmt = db.prepare(`UPDATE refresh_credentials SET state = 'revoked' WHERE device_id = ? AND state IN ('current', 'previous')`);
  }

  /** Stores a new `current` credential (by hash). */
  add(hash: string, deviceId: DeviceId, issuedAt: number, expiresAt: number): void {
    this.insertStmt.run(hash, deviceId, issuedAt, expiresAt);
  }

  find(hash: string): RefreshRecord | undefined {
    const r = this.findStmt.get(hash);
    return r && toRefresh(r);
  }

  /** `find` under the write lock a write transaction (BEGIN IMMEDIATE) already holds: nothing to add in SQLite. */
  findForUpdate(hash: string): RefreshRecord | undefined {
    return this.find(hash);
  }

  setState(hash: string, state: RefreshState, usedAt: number | null = null): void {
    this.setStateStmt.run(state, usedAt, hash);
  }

  /** Every credential of the device in `state`, except `keep`, becomes superseded. */
  supersede(deviceId: DeviceId, state: RefreshState, keep: string): void {
    this.demoteStmt.run(deviceId, state, keep);
  }

  revokeAllOf(deviceId: DeviceId): void {
    this.revokeDeviceStmt.run(deviceId);
  }

  /** Forgets every credential record of a device (deleting it): an unknown credential is refused. */
  deleteAllOf(deviceId: DeviceId): void {
    this.deleteDeviceStmt.run(deviceId);
  }

  /** Every credential record of a device, newest first (hashes only: never the credential). */
  forDevice(deviceId: DeviceId): RefreshRecord[] {
    return this.forDeviceStmt.all(deviceId).map(toRefresh);
  }
}
