import type { Db } from './db.js';
import type { Operator, OperatorRole, OperatorToken } from '../types.js';
import { toOperator, toOperatorToken, type OperatorRow, type OperatorTokenRow } from '../rows.js';

export class Operators {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  get(name: string): Operator | undefined {
    const row = this.db.prepare<[string], OperatorRow>('SELECT * FROM operators WHERE name = ?').get(name);
    return row && toOperator(row);
  }

  list(): Operator[] {
    return this.db.prepare<[], OperatorRow>('SELECT * FROM operators ORDER BY name').all().map(toOperator);
  }

  insert(name: string, role: OperatorRole, passwordHash: string, now: number): boolean {
    return this.db.prepare('INSERT OR IGNORE INTO operators (name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)')
      .run(name, role, passwordHash, now, now).changes === 1;
  }

  setPassword(name: string, passwordHash: string, now: number): boolean {
    return this.db.prepare('UPDATE operators SET password_hash = ?, updated_at = ? WHERE name = ?').run(passwordHash, now, name).changes === 1;
  }

  touchLogin(name: string, now: number): void {
    this.db.prepare('UPDATE operators SET last_login_at = ? WHERE name = ?').run(now, name);
  }

  delete(name: string): boolean {
    this.db.prepare('DELETE FROM operator_tokens WHERE operator = ?').run(name);
    return this.db.prepare('DELETE FROM operators WHERE name = ?').run(name).changes === 1;
  }

  addToken(hash: string, operator: string, expiresAt: number, now: number): void {
    this.db.prepare('INSERT INTO operator_tokens (hash, operator, created_at, expires_at) VALUES (?, ?, ?, ?)').run(hash, operator, now, expiresAt);
  }

  findToken(hash: string): OperatorToken | undefined {
    const row = this.db.prepare<[string], OperatorTokenRow>('SELECT * FROM operator_tokens WHERE hash = ?').get(hash);
    return row && toOperatorToken(row);
  }

  touchToken(hash: string, now: number): void {
    this.db.prepare('UPDATE operator_tokens SET last_used_at = ? WHERE hash = ?').run(now, hash);
  }

  liveTokenCounts(now: number): Map<string, number> {
    const rows = this.db.prepare<[number], { operator: string; n: number }>('SELECT operator, COUNT(*) AS n FROM operator_tokens WHERE expires_at > ? GROUP BY operator').all(now);
    return new Map(rows.map((r) => [r.operator, r.n]));
  }
}
