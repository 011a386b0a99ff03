import type { AuditStore } from '../interface.js';
import type { Actor, AuditEvent, AuditQuery, NewAuditEvent } from '../types.js';
import type { Sql } from './pool.js';
import { toAuditEvent, type AuditRow as Row } from '../rows.js';

export class PgAuditLog implements AuditStore {
  constructor(private readonly sql: Sql) {}

  async append(actor: Actor, action: string, deviceId: string | null, details: Record<string, unknown> | null = null, at = Date.now()): Promise<void> {
    await this.sql.write('INSERT INTO audit (at, actor, action, device_id, details) VALUES ($1, $2, $3, $4, $5)',
      [at, actor, action, deviceId, details ? JSON.stringify(details) : null]);
  }

  async appendMany(rows: readonly NewAuditEvent[]): Promise<void> {
    if (rows.length === 0) return;
    const now = Date.now();
    await this.sql.run(
      `INSERT INTO audit (at, actor, action, device_id, details)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])`,
      [rows.map((r) => r.at ?? now), rows.map((r) => r.actor), rows.map((r) => r.action), rows.map((r) => r.deviceId),
        rows.map((r) => (r.details ? JSON.stringify(r.details) : null))],
    );
  }

  async prune(before: number, limit: number, actions?: readonly string[]): Promise<number> {
    return actions
      ? this.sql.run('DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 AND action = ANY($2::text[]) LIMIT $3)', [before, actions, limit])
      : this.sql.run('DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 LIMIT $2)', [before, limit]);
  }

  async query(q: AuditQuery = {}): Promise<AuditEvent[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown) => `$${args.push(v)}`;
    if (q.deviceId) where.push(`device_id = ${arg(q.deviceId)}`);
    if (q.since !== undefined) where.push(`at >= ${arg(q.since)}`);
    if (q.action !== undefined) {
      if (q.action.endsWith('*')) where.push(`action LIKE ${arg(`${q.action.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`)}%`)} ESCAPE '\\'`);
      else where.push(`action = ${arg(q.action)}`);
    }
    if (q.before !== undefined) where.push(`id < ${arg(q.before)}`);
    const limit = q.limit === undefined ? 100 : q.limit;
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC${limit === null ? '' : ` LIMIT ${arg(limit)}`}`;
    return (await this.sql.rows<Row>(sql, args)).map(toAuditEvent);
  }
}
