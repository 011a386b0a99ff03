import { RegistryError } from '../../errors/index.js';
import type { ProfileStore } from '../interface.js';
import type { Profile, ProfileInput } from '../types.js';
import type { Sql } from './pool.js';
import { toProfile, type ProfileRow as Row } from '../rows.js';

export class PgProfiles implements ProfileStore {
  constructor(private readonly sql: Sql) {}

  async get(name: string): Promise<Profile | undefined> {
    const [row] = await this.sql.rows<Row>('SELECT * FROM profiles WHERE name = $1', [name]);
    return row && toProfile(row);
  }

  async require(name: string): Promise<Profile> {
    const p = await this.get(name);
    if (p) return p;
    const known = (await this.list()).map((x) => x.name).join(', ') || 'none';
    throw new RegistryError('ERR_PROFILE_NOT_FOUND', `unknown profile "${name}" (known: ${known}); create it with: credbroker profile set ${name} --pub ... --sub ...`);
  }

  async list(): Promise<Profile[]> {
    return (await this.sql.rows<Row>('SELECT * FROM profiles ORDER BY name')).map(toProfile);
  }

  async delete(name: string): Promise<boolean> {
    return (await this.sql.run('DELETE FROM profiles WHERE name = $1', [name])) > 0;
  }

  async set(p: ProfileInput, now = Date.now()): Promise<void> {
    await this.sql.run(
      `INSERT INTO profiles (name, publish, subscribe, token_ttl_ms, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (name) DO UPDATE SET publish = excluded.publish, subscribe = excluded.subscribe, token_ttl_ms = excluded.token_ttl_ms, updated_at = excluded.updated_at`,
      [p.name, JSON.stringify(p.publish), JSON.stringify(p.subscribe), p.tokenTtlMs, now]);
  }
}
