import type { Db } from './db.js';
import type { Profile } from '../types.js';

import { RegistryError } from '../../errors/index.js';
import { toProfile, type ProfileRow as Row } from '../rows.js';

export class Profiles {
  private readonly getStmt;
  private readonly listStmt;
  private readonly upsertStmt;
  private readonly deleteStmt;
  constructor(db: Db) {
    this.deleteStmt = db.prepare('DELETE FROM profiles WHERE name = ?');
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM profiles WHERE name = ?');
    this.listStmt = db.prepare<[], Row>('SELECT * FROM profiles ORDER BY name');
    this.upsertStmt = db.prepare(
      `INSERT INTO profiles (name, publish, subscribe, token_ttl_ms, created_at, updated_at)
       VALUES (@name, @publish, @subscribe, @ttl, @now, @now)
       ON CONFLICT(name) DO UPDATE SET publish = @publish, subscribe = @subscribe, token_ttl_ms = @ttl, updated_at = @now`,
    );
  }

  get(name: string): Profile | undefined {
    const row = this.getStmt.get(name);
    return row && toProfile(row);
  }

  /** @throws RegistryError `ERR_PROFILE_NOT_FOUND` naming the known profiles. */
  require(name: string): Profile {
    const p = this.get(name);
    if (p) return p;
    const known = this.list().map((x) => x.name).join(', ') || 'none';
    throw new RegistryError('ERR_PROFILE_NOT_FOUND', `unknown profile "${name}" (known: ${known}); create it with: credbroker profile set ${name} --pub ... --sub ...`);
  }

  list(): Profile[] {
    return this.listStmt.all().map(toProfile);
  }

  /** Removes the profile; the devices table's foreign key refuses it while a device uses it. */
  delete(name: string): boolean {
    return this.deleteStmt.run(name).changes > 0;
  }

  set(p: Pick<Profile, 'name' | 'publish' | 'subscribe' | 'tokenTtlMs'>, now = Date.now()): void {
    this.upsertStmt.run({ name: p.name, publish: JSON.stringify(p.publish), subscribe: JSON.stringify(p.subscribe), ttl: p.tokenTtlMs, now });
  }
}
