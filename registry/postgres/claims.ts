import { RegistryError } from '../../errors/index.js';
import type { ClaimName, DeviceId } from '../ids.js';
import type { ClaimStore } from '../interface.js';
import type { Claim, ClaimedDevice, NewClaim } from '../types.js';
import type { Sql } from './pool.js';
import { type ClaimedDeviceRow, toClaim, toClaimedDevice, type ClaimRow as Row } from '../rows.js';

/** Allow-list rows per INSERT statement (a production run's serials arrive in one claim create). */
const ALLOW_CHUNK = 1000;

/** The twin of registry/claims.ts. */
export class PgClaims implements ClaimStore {
  constructor(private readonly sql: Sql) {}

  async get(name: string): Promise<Claim | undefined> {
    const [row] = await this.sql.rows<Row>('SELECT * FROM claims WHERE name = $1', [name]);
    return row && toClaim(row);
  }

  async getForUpdate(name: string): Promise<Claim | undefined> {
    const [row] = await this.sql.rows<Row>('SELECT * FROM claims WHERE name = $1 FOR UPDATE', [name]);
    return row && toClaim(row);
  }

  async require(name: string): Promise<Claim> {
    const c = await this.get(name);
    if (!c) throw new RegistryError('ERR_CLAIM_NOT_FOUND', `no claim "${name}" in the registry (see: credbroker claim list)`);
    return c;
  }

  async list(): Promise<Claim[]> {
    return (await this.sql.rows<Row>('SELECT * FROM claims ORDER BY name')).map(toClaim);
  }

  async insert(c: NewClaim, allowList: readonly string[] | null): Promise<void> {
    await this.sql.run(`INSERT INTO claims (name, profile, hash, max_devices, id_pattern, has_allow_list, broker_url, expires_at, created_at, simulation)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [c.name, c.profile, c.hash, c.maxDevices, c.idPattern, allowList !== null, c.brokerUrl, c.expiresAt, c.createdAt, c.simulation]);
    const ids = allowList ?? [];
    for (let i = 0; i < ids.length; i += ALLOW_CHUNK) {
      await this.sql.run('INSERT INTO claim_allowed (claim, device_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING', [c.name, ids.slice(i, i + ALLOW_CHUNK)]);
    }
  }

  async allows(name: string, deviceId: string): Promise<boolean> {
    return (await this.sql.rows('SELECT 1 FROM claim_allowed WHERE claim = $1 AND device_id = $2', [name, deviceId])).length > 0;
  }

  async allowed(name: string): Promise<string[]> {
    return (await this.sql.rows<{ device_id: string }>('SELECT device_id FROM claim_allowed WHERE claim = $1 ORDER BY device_id', [name])).map((r) => r.device_id);
  }

  async allowListSize(name: string): Promise<number> {
    const [r] = await this.sql.rows<{ n: number }>('SELECT count(*)::bigint AS n FROM claim_allowed WHERE claim = $1', [name]);
    return r?.n ?? 0;
  }

  async revoke(name: string, reason: string, now: number): Promise<boolean> {
    return (await this.sql.run('UPDATE claims SET revoked_at = $1, revoked_reason = $2 WHERE name = $3 AND revoked_at IS NULL', [now, reason, name])) > 0;
  }

  async setExpiry(name: string, expiresAt: number): Promise<void> {
    await this.sql.run('UPDATE claims SET expires_at = $1 WHERE name = $2', [expiresAt, name]);
  }

  async used(name: string): Promise<number> {
    const [r] = await this.sql.rows<{ n: number }>('SELECT count(*)::bigint AS n FROM claim_devices WHERE claim = $1', [name]);
    return r?.n ?? 0;
  }

  async usedByClaim(): Promise<Map<string, number>> {
    const rows = await this.sql.rows<{ claim: string; n: number }>('SELECT claim, count(*)::bigint AS n FROM claim_devices GROUP BY claim');
    return new Map(rows.map((r) => [r.claim, r.n]));
  }

  async recordDevice(deviceId: DeviceId, claim: ClaimName, now: number, address: string | null): Promise<void> {
    await this.sql.run(`INSERT INTO claim_devices (device_id, claim, claimed_at, address) VALUES ($1, $2, $3, $4)
      ON CONFLICT (device_id) DO UPDATE SET claim = excluded.claim, claimed_at = excluded.claimed_at, address = excluded.address`, [deviceId, claim, now, address]);
  }

  async devices(name: string, limit = 1000): Promise<ClaimedDevice[]> {
    const rows = await this.sql.rows<ClaimedDeviceRow>(
      'SELECT * FROM claim_devices WHERE claim = $1 ORDER BY claimed_at, device_id LIMIT $2', [name, limit]);
    return rows.map(toClaimedDevice);
  }

  async usingProfile(profile: string): Promise<string[]> {
    return (await this.sql.rows<{ name: string }>('SELECT name FROM claims WHERE profile = $1 ORDER BY name', [profile])).map((r) => r.name);
  }

  async delete(name: string): Promise<void> {
    for (const q of ['DELETE FROM claim_allowed WHERE claim = $1', 'DELETE FROM claim_devices WHERE claim = $1', 'DELETE FROM claims WHERE name = $1']) await this.sql.run(q, [name]);
  }
}
