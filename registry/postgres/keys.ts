import type { Kid } from '../ids.js';
import type { KeyStore } from '../interface.js';
import type { NewSigningKey, SigningKeyRecord } from '../types.js';
import type { Sql } from './pool.js';
import { toKey, type KeyRow as Row } from '../rows.js';
import { LOCKS } from './migrations.js';

export class PgSigningKeys implements KeyStore {
  constructor(private readonly sql: Sql) {}

  async add(k: NewSigningKey, now: number): Promise<void> {
    await this.sql.run(`INSERT INTO signing_keys (kid, alg, status, public_jwk, private_jwk, created_at) VALUES ($1, $2, 'active', $3, $4, $5)`,
      [k.kid, k.alg, k.publicJwk, k.privateJwk, now]);
  }

  async retire(kid: Kid, verifyUntil: number, now: number): Promise<void> {
    await this.sql.run(
      `UPDATE signing_keys SET status = 'retired', private_jwk = NULL, retired_at = coalesce(retired_at, $1), verify_until = $2 WHERE kid = $3`,
      [now, verifyUntil, kid]);
  }

  /**
   * In a transaction, first takes the key set's lock until it ends: rotations
   * (and a first key) that read the active key to retire it are serialized as on
   * SQLite (BEGIN IMMEDIATE). READ COMMITTED alone would let three racing
   * rotations each retire the same old key and leave three active.
   */
  async usable(now: number): Promise<SigningKeyRecord[]> {
    if (this.sql.inTransaction) await this.sql.run(`SELECT pg_advisory_xact_lock(${LOCKS.signingKeys})`);
    return (await this.sql.rows<Row>(`SELECT * FROM signing_keys WHERE status = 'active' OR verify_until > $1 ORDER BY created_at, kid`, [now])).map(toKey);
  }

  async all(): Promise<SigningKeyRecord[]> {
    return (await this.sql.rows<Row>('SELECT * FROM signing_keys ORDER BY created_at, kid')).map(toKey);
  }
}
