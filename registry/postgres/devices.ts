import { RegistryError } from '../../errors/index.js';
import type { DeviceId, ProfileName } from '../ids.js';
import type { DeviceStore } from '../interface.js';
import type { Device, DeviceFilter, DeviceRestriction, DeviceStatus, ProvisionedDevice } from '../types.js';
import { LOCKS } from './migrations.js';
import { arrayLiteral, insertColumns } from './insert-columns.js';
import type { Sql } from './pool.js';
import { toDevice, type DeviceRow as Row } from '../rows.js';

export class PgDevices implements DeviceStore {
  constructor(private readonly sql: Sql) {}

  async get(id: string): Promise<Device | undefined> {
    const [row] = await this.sql.rows<Row>('SELECT * FROM devices WHERE id = $1', [id]);
    return row && toDevice(row);
  }

  async require(id: string): Promise<Device> {
    const d = await this.get(id);
    if (!d) throw new RegistryError('ERR_DEVICE_NOT_FOUND', `no device "${id}" in the registry (see: credbroker devices)`);
    return d;
  }

  async insert(id: DeviceId, profile: ProfileName, credentialExpiresAt: number, now: number, simulation = false): Promise<void> {
    await this.sql.run(
      `INSERT INTO devices (id, profile, status, credential_expires_at, created_at, simulation) VALUES ($1, $2, 'active', $3, $4, $5)`,
      [id, profile, credentialExpiresAt, now, simulation],
    );
  }

  /**
   * A factory chunk in four statements whatever its size (one per table, a column
   * per parameter), pipelined: they go out at once and travel with the caller's
   * COMMIT, so a chunk costs no round trip of its own (insert-columns.ts).
   */
  async provision(rows: readonly ProvisionedDevice[], now: number): Promise<void> {
    if (rows.length === 0) return;
    const col = <T>(f: (r: ProvisionedDevice) => T): T[] => rows.map(f);
    const ids = col((r) => r.deviceId);
    const jtis = col((r) => r.token.jti);
    const same = <T>(v: T): T[] => rows.map(() => v);
    await insertColumns(this.sql, 'provisioning', 'devices',
      { id: 'text', profile: 'text', status: 'text', credential_expires_at: 'bigint', created_at: 'bigint', simulation: 'boolean' },
      [ids, col((r) => r.profile), same('active'), col((r) => r.credentialExpiresAt), same(now), col((r) => r.simulation)]);
    await insertColumns(this.sql, 'provisioning', 'tokens',
      { jti: 'text', device_id: 'text', kid: 'text', issued_at: 'bigint', expires_at: 'bigint', family: 'text' },
      [jtis, ids, col((r) => r.token.kid), col((r) => r.token.issuedAt), col((r) => r.token.expiresAt), jtis]);
    await insertColumns(this.sql, 'provisioning', 'refresh_credentials',
      { hash: 'text', device_id: 'text', state: 'text', issued_at: 'bigint', expires_at: 'bigint' },
      [col((r) => r.refreshHash), ids, same('current'), same(now), col((r) => r.credentialExpiresAt)]);
    await insertColumns(this.sql, 'provisioning', 'audit',
      { at: 'bigint', actor: 'text', action: 'text', device_id: 'text', details: 'text' },
      [same(now), col((r) => r.actor ?? 'cli'), same('device.provision'), ids,
        col((r) => JSON.stringify({ profile: r.profile, jti: r.token.jti, ...r.auditDetails }))]);
  }

  async delete(id: DeviceId): Promise<boolean> {
    return (await this.sql.run('DELETE FROM devices WHERE id = $1', [id])) > 0;
  }

  /**
   * In a transaction this also takes the provisioning lock first, so that two
   * stations provisioning the same ids are serialized as on SQLite: the second
   * sees the first one's devices (and skips them) instead of failing on a duplicate key.
   */
  async existing(ids: readonly string[]): Promise<Set<string>> {
    // Pipelined: the lock travels with the first SELECT (which runs once it is held), one round trip in all.
    if (this.sql.inTransaction) await this.sql.write(`SELECT pg_advisory_xact_lock(${LOCKS.provision})`);
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += 10_000) {
      const rows = await this.sql.rows<{ id: string }>('SELECT id FROM devices WHERE id = ANY($1::text[])', [arrayLiteral('text', ids.slice(i, i + 10_000))]);
      for (const r of rows) found.add(r.id);
    }
    return found;
  }

  async list(filter: DeviceFilter = {}): Promise<Device[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown) => `$${args.push(v)}`;
    if (filter.status) where.push(`status = ${arg(filter.status)}`);
    if (filter.profile) where.push(`profile = ${arg(filter.profile)}`);
    // Ids are ASCII below DEL and compare bytewise (COLLATE "C"): every id with the prefix sorts before prefix + DEL.
    if (filter.prefix) where.push(`id >= ${arg(filter.prefix)} AND id < ${arg(`${filter.prefix}\u007f`)}`);
    if (filter.after !== undefined) where.push(`id > ${arg(filter.after)}`);
    const limit = filter.limit ?? null;
    const sql = `SELECT * FROM devices ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id${limit === null ? '' : ` LIMIT ${arg(limit)}`}`;
    return (await this.sql.rows<Row>(sql, args)).map(toDevice);
  }

  async revoke(id: DeviceId, reason: string, now: number): Promise<boolean> {
    return (await this.sql.run(
      `UPDATE devices SET status = 'revoked', revoked_reason = $1, revoked_at = $2 WHERE id = $3 AND status = 'active'`, [reason, now, id],
    )) > 0;
  }

  async restore(id: DeviceId, now: number): Promise<boolean> {
    return (await this.sql.run(
      `UPDATE devices SET status = 'active', revoked_reason = NULL, revoked_at = NULL, tokens_valid_after = $1 WHERE id = $2 AND status = 'revoked'`,
      [Math.floor(now / 1000), id],
    )) > 0;
  }

  async setProfile(id: DeviceId, profile: ProfileName): Promise<boolean> {
    return (await this.sql.run('UPDATE devices SET profile = $1 WHERE id = $2', [profile, id])) > 0;
  }

  async countByProfile(): Promise<Map<string, number>> {
    const rows = await this.sql.rows<{ profile: string; n: number }>('SELECT profile, count(*) AS n FROM devices GROUP BY profile');
    return new Map(rows.map((r) => [r.profile, r.n]));
  }

  async countByStatus(): Promise<Record<DeviceStatus, number>> {
    const out: Record<DeviceStatus, number> = { active: 0, revoked: 0 };
    for (const r of await this.sql.rows<{ status: DeviceStatus; n: number }>('SELECT status, count(*) AS n FROM devices GROUP BY status')) out[r.status] = r.n;
    return out;
  }

  async touch(id: DeviceId, now: number): Promise<void> {
    await this.sql.run('UPDATE devices SET last_seen_at = $1 WHERE id = $2', [now, id]);
  }

  async touchMany(seen: ReadonlyMap<DeviceId, number>): Promise<void> {
    if (seen.size === 0) return;
    // Sorted, so that two nodes touching overlapping devices tend to lock rows in one order.
    const entries = [...seen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    await this.sql.run(
      'UPDATE devices d SET last_seen_at = v.at FROM unnest($1::text[], $2::bigint[]) AS v(id, at) WHERE d.id = v.id',
      [entries.map(([id]) => id), entries.map(([, at]) => at)],
    );
  }

  async restrictions(): Promise<DeviceRestriction[]> {
    const rows = await this.sql.rows<Row>(`SELECT id, status, tokens_valid_after FROM devices WHERE status = 'revoked' OR tokens_valid_after > 0`);
    return rows.map((r) => ({ id: r.id as DeviceId, status: r.status, tokensValidAfter: r.tokens_valid_after }));
  }
}
