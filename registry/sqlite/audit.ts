import type { Db } from './db.js';
import type { Actor, AuditEvent, AuditQuery, NewAuditEvent } from '../types.js';
import { toAuditEvent, type AuditRow as Row } from '../rows.js';

export class AuditLog {
  private readonly db: Db;
  private readonly insertStmt;
  private readonly pruneStmt;
  private readonly pruneActionsStmt;
  constructor(db: Db) {
    this.db = db;
    this.pruneStmt = db.prepare<[number, number]>('DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? LIMIT ?)');
    this.pruneActionsStmt = db.prepare<[number, string, number]>(
      'DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? AND action IN (SELECT value FROM json_each(?)) LIMIT ?)');
    this.insertStmt = db.prepare('INSERT INTO audit (at, actor, action, device_id, details) VALUES (?, ?, ?, ?, ?)');
  }

  append(actor: Actor, action: string, deviceId: string | null, details: Record<string, unknown> | null = null, at = Date.now()): void {
    this.insertStmt.run(at, actor, action, deviceId, details ? JSON.stringify(details) : null);
  }

  appendMany(rows: readonly NewAuditEvent[]): void {
    const now = Date.now();
    for (const r of rows) this.append(r.actor, r.action, r.deviceId, r.details ?? null, r.at ?? now);
  }

  /**
   * Deletes up to `limit` events older than `before` (ms) — only those with one
   * of `actions` when given. Returns how many went.
   */
  prune(before: number, limit: number, actions?: readonly string[]): number {
    return (actions ? this.pruneActionsStmt.run(before, JSON.stringify(actions), limit) : this.pruneStmt.run(before, limit)).changes;
  }

  /** Newest first. */
  query(q: AuditQuery = {}): AuditEvent[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.deviceId) { where.push('device_id = ?'); args.push(q.deviceId); }
    if (q.since !== undefined) { where.push('at >= ?'); args.push(q.since); }
    if (q.action !== undefined) {
      if (q.action.endsWith('*')) { where.push("action LIKE ? ESCAPE '\\'"); args.push(`${q.action.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`)}%`); }
      else { where.push('action = ?'); args.push(q.action); }
    }
    if (q.before !== undefined) { where.push('id < ?'); args.push(q.before); }
    const limit = q.limit === undefined ? 100 : q.limit;
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC${limit === null ? '' : ' LIMIT ?'}`;
    if (limit !== null) args.push(limit);
    return (this.db.prepare(sql).all(...args) as Row[]).map(toAuditEvent);
  }
}
