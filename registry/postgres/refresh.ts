import type { DeviceId } from '../ids.js';
import type { RefreshStore } from '../interface.js';
import type { RefreshRecord, RefreshState } from '../types.js';
import type { Sql } from './pool.js';
import { toRefresh, type RefreshRow as Row } from '../rows.js';

const COLUMNS = 'hash, device_id, state, issued_at, expires_at, used_at';

export class PgRefreshCredentials implements RefreshStore {
  constructor(private readonly sql: Sql) {}

  async add(hash: string, deviceId: DeviceId, issuedAt: number, expiresAt: number): Promise<void> {
    await this.sql.run(`INSERT INTO refresh_credentials (hash, device_id, state, issued_at, expires_at) VALUES ($1, $2, 'current', $3, $4)`,
      [hash, deviceId, issuedAt, expiresAt]);
  }

  async find(hash: string): Promise<RefreshRecord | undefined> {
    const [r] = await this.sql.rows<Row>(`SELECT ${COLUMNS} FROM refresh_credentials WHERE hash = $1`, [hash]);
    return r && toRefresh(r);
  }

  /**
   * The row stays locked until the transaction ends. A second renewal with the same
   * credential (another node) waits here, then reads the row as the first one left
   * it (READ COMMITTED re-reads a locked row once its locker commits): it sees the
   * credential rotated, never the state both started from.
   */
  async findForUpdate(hash: string): Promise<RefreshRecord | undefined> {
    const [r] = await this.sql.rows<Row>(`SELECT ${COLUMNS} FROM refresh_credentials WHERE hash = $1 FOR UPDATE`, [hash]);
    return r && toRefresh(r);
  }

  async setState(hash: string, state: RefreshState, usedAt: number | null = null): Promise<void> {
    await this.sql.run('UPDATE refresh_credentials SET state = $1, used_at = coalesce($2, used_at) WHERE hash = $3', [state, usedAt, hash]);
  }

  async supersede(deviceId: DeviceId, state: RefreshState, keep: string): Promise<void> {
    await this.sql.run(`UPDATE refresh_credentials SET state = 'superseded' WHERE device_id = $1 AND state = $2 AND hash <> $3`, [deviceId, state, keep]);
  }

  async revokeAllOf(deviceId: DeviceId): Promise<void> {
    await this.sql.run(`UPDATE refresh_credentials SET state = 'revoked' WHERE device_id = $1 AND state IN ('current', 'previous')`, [deviceId]);
  }

  async deleteAllOf(deviceId: DeviceId): Promise<void> {
    await this.sql.run('DELETE FROM refresh_credentials WHERE device_id = $1', [deviceId]);
  }

  async forDevice(deviceId: DeviceId): Promise<RefreshRecord[]> {
    return (await this.sql.rows<Row>(`SELECT ${COLUMNS} FROM refresh_credentials WHERE device_id = $1 ORDER BY issued_at DESC, n DESC`, [deviceId]))
      .map(toRefresh);
  }
}
