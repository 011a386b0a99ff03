import type { OperatorStore } from '../interface.js';
import type { Operator, OperatorRole, OperatorToken } from '../types.js';
import { toOperator, toOperatorToken, type OperatorRow, type OperatorTokenRow } from '../rows.js';
import type { Sql } from './pool.js';

export class PgOperators implements OperatorStore {
  constructor(private readonly sql: Sql) {}

  async get(name: string): Promise<Operator | undefined> {
    const [row] = await this.sql.rows<OperatorRow>('SELECT * FROM operators WHERE name = $1', [name]);
    return row && toOperator(row);
  }

  async list(): Promise<Operator[]> {
    return (await this.sql.rows<OperatorRow>('SELECT * FROM operators ORDER BY name')).map(toOperator);
  }

  async insert(name: string, role: OperatorRole, passwordHash: string, now: number): Promise<boolean> {
    return (await this.sql.run('INSERT INTO operators (name, role, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING',
      [name, role, passwordHash, now])) === 1;
  }

  async setPassword(name: string, passwordHash: string, now: number): Promise<boolean> {
    return (await this.sql.run('UPDATE operators SET password_hash = $1, updated_at = $2 WHERE name = $3', [passwordHash, now, name])) === 1;
  }

  async touchLogin(name: string, now: number): Promise<void> {
    await this.sql.run('UPDATE operators SET last_login_at = $1 WHERE name = $2', [now, name]);
  }

  async delete(name: string): Promise<boolean> {
    await this.sql.run('DELETE FROM operator_tokens WHERE operator = $1', [name]);
    return (await this.sql.run('DELETE FROM operators WHERE name = $1', [name])) === 1;
  }

  async addToken(hash: string, operator: string, expiresAt: number, now: number): Promise<void> {
    await this.sql.run('INSERT INTO operator_tokens (hash, operator, created_at, expires_at) VALUES ($1, $2, $3, $4)', [hash, operator, now, expiresAt]);
  }

  async findToken(hash: string): Promise<OperatorToken | undefined> {
    const [row] = await this.sql.rows<OperatorTokenRow>('SELECT * FROM operator_tokens WHERE hash = $1', [hash]);
    return row && toOperatorToken(row);
  }

  async touchToken(hash: string, now: number): Promise<void> {
    await this.sql.run('UPDATE operator_tokens SET last_used_at = $1 WHERE hash = $2', [now, hash]);
  }

  async liveTokenCounts(now: number): Promise<Map<string, number>> {
    const rows = await this.sql.rows<{ operator: string; n: number }>('SELECT operator, COUNT(*)::bigint AS n FROM operator_tokens WHERE expires_at > $1 GROUP BY operator', [now]);
    return new Map(rows.map((r) => [r.operator, r.n]));
  }
}
