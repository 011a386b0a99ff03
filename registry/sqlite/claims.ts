import type { Db } from './db.js';
import type { ClaimName, DeviceId } from '../ids.js';
import type { Claim, ClaimedDevice, NewClaim } from '../types.js';
import { RegistryError } from '../../errors/index.js';
import { type ClaimedDeviceRow, toClaim, toClaimedDevice, type ClaimRow as Row } from '../rows.js';

/** The claims tables: `claims`, their allow-lists and the devices provisioned through them. */
export class Claims {
  private readonly getStmt;
  private readonly listStmt;
  private readonly insertStmt;
  private readonly allowStmt;
  private readonly allowedStmt;
  private readonly allowCountStmt;
  private readonly allowedAllStmt;
  private readonly revokeStmt;
  private readonly extendStmt;
  private readonly usedStmt;
  private readonly usedAllStmt;
  private readonly recordStmt;
  private readonly devicesStmt;
  private readonly deleteStmts;
  constructor(db: Db) {
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM claims WHERE name = ?');
    this.listStmt = db.prepare<[], Row>('SELECT * FROM claims ORDER BY name');
    this.insertStmt = db.prepare(
      'INSERT INTO claims (name, profile, hash, max_devices, id_pattern, has_allow_list, broker_url, expires_at, created_at, simulation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.allowStmt = db.prepare('INSERT OR IGNORE INTO claim_allowed (claim, device_id) VALUES (?, ?)');
    this.allowedStmt = db.prepare<[string, string], number>('SELECT 1 FROM claim_allowed WHERE claim = ? AND device_id = ?').pluck();
    this.allowedAllStmt = db.prepare<[string], string>('SELECT device_id FROM claim_allowed WHERE claim = ? ORDER BY device_id').pluck();
    this.allowCountStmt = db.prepare<[string], number>('SELECT count(*) FROM claim_allowed WHERE claim = ?').pluck();
    this.revokeStmt = db.prepare('UPDATE claims SET revoked_at = ?, revoked_reason = ? WHERE name = ? AND revoked_at IS NULL');
    this.extendStmt = db.prepare('UPDATE claims SET expires_at = ? WHERE name = ?');
    this.usedStmt = db.prepare<[string], number>('SELECT count(*) FROM claim_devices WHERE claim = ?').pluck();
    this.usedAllStmt = db.prepare<[], { claim: string; n: number }>('SELECT claim, count(*) AS n FROM claim_devices GROUP BY claim');
    // A deleted device's id claimed again: its record moves to the new claim (one record per id).
    this.recordStmt = db.prepare(`INSERT INTO claim_devices (device_id, claim, claimed_at, address) VALUES (?, ?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET claim = excluded.claim, claimed_at = excluded.claimed_at, address = excluded.address`);
    this.devicesStmt = db.prepare<[string, number], ClaimedDeviceRow>(
      'SELECT * FROM claim_devices WHERE claim = ? ORDER BY claimed_at, device_id LIMIT ?',
    );
    this.deleteStmts = ['claim_allowed WHERE claim', 'claim_devices WHERE claim', 'claims WHERE name'].map((t) => db.prepare(`DELETE FROM ${t} = ?`));
  }

  get(name: string): Claim | undefined {
    const r = this.getStmt.get(name);
    return r && toClaim(r);
  }

  /** `get`: the caller's write transaction (BEGIN IMMEDIATE) already holds the lock. */
  getForUpdate(name: string): Claim | undefined {
    return this.get(name);
  }

  /** @throws RegistryError `ERR_CLAIM_NOT_FOUND` */
  require(name: string): Claim {
    const c = this.get(name);
    if (!c) throw new RegistryError('ERR_CLAIM_NOT_FOUND', `no claim "${name}" in the registry (see: credbroker claim list)`);
    return c;
  }

  list(): Claim[] {
    return this.listStmt.all().map(toClaim);
  }

  /** Stores a new claim and its allow-list (call inside `reg.write`). */
  insert(c: NewClaim, allowList: readonly string[] | null): void {
    this.insertStmt.run(c.name, c.profile, c.hash, c.maxDevices, c.idPattern, allowList ? 1 : 0, c.brokerUrl, c.expiresAt, c.createdAt, c.simulation ? 1 : 0);
    for (const id of allowList ?? []) this.allowStmt.run(c.name, id);
  }

  /** Whether `deviceId` is on the claim's allow-list (an index lookup: lists of a whole production run are fine). */
  allows(name: string, deviceId: string): boolean {
    return this.allowedStmt.get(name, deviceId) !== undefined;
  }

  /** The allow-list itself, in id order (`registry copy`). */
  allowed(name: string): string[] {
    return this.allowedAllStmt.all(name);
  }

  allowListSize(name: string): number {
    return this.allowCountStmt.get(name) ?? 0;
  }

  /** @returns false when the claim was already revoked. */
  revoke(name: string, reason: string, now: number): boolean {
    return this.revokeStmt.run(now, reason, name).changes > 0;
  }

  setExpiry(name: string, expiresAt: number): void {
    this.extendStmt.run(expiresAt, name);
  }

  /** Devices provisioned through the claim so far: what its quota has spent. */
  used(name: string): number {
    return this.usedStmt.get(name) ?? 0;
  }

  usedByClaim(): Map<string, number> {
    return new Map(this.usedAllStmt.all().map((r) => [r.claim, r.n]));
  }

  /** Records a device provisioned through the claim (call inside the transaction that stores the device). */
  recordDevice(deviceId: DeviceId, claim: ClaimName, now: number, address: string | null): void {
    this.recordStmt.run(deviceId, claim, now, address);
  }

  /** The devices provisioned through the claim, oldest first (at most `limit`). */
  devices(name: string, limit = 1000): ClaimedDevice[] {
    return this.devicesStmt.all(name, limit).map(toClaimedDevice);
  }

  /** Names of the claims that provision under `profile` (such a profile cannot be deleted). */
  usingProfile(profile: string): string[] {
    return this.list().filter((c) => c.profile === profile).map((c) => c.name);
  }

  /** Removes a claim with its allow-list and device records (the devices themselves stay). */
  delete(name: string): void {
    for (const stmt of this.deleteStmts) stmt.run(name);
  }
}
