import type { Db } from './db.js';
import type { Kid } from '../ids.js';
import type { SigningKeyRecord } from '../types.js';
import { toKey, type KeyRow as Row } from '../rows.js';

export class SigningKeys {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  add(k: Pick<SigningKeyRecord, 'kid' | 'alg' | 'publicJwk' | 'privateJwk'>, now: number): void {
    this.db.prepare(`INSERT INTO signing_keys (kid, alg, status, public_jwk, private_jwk, created_at) VALUES (?, ?, 'active', ?, ?, ?)`)
      .run(k.kid, k.alg, k.publicJwk, k.privateJwk, now);
  }

  /**
   * Retires a key: it stops signing at once (its private half is wiped) and verifies until `verifyUntil`.
   * On a key already retired, only `verifyUntil` moves (`keys rotate --now` ends it at once).
   */
  retire(kid: Kid, verifyUntil: number, now: number): void {
    this.db.prepare(`UPDATE signing_keys SET status = 'retired', private_jwk = NULL, retired_at = coalesce(retired_at, ?), verify_until = ? WHERE kid = ?`)
      .run(now, verifyUntil, kid);
  }

  /** Keys that can still verify a token at `now`: the active one and retired ones not yet past `verify_until`. */
  usable(now: number): SigningKeyRecord[] {
    return this.db.prepare<[number], Row>(`SELECT * FROM signing_keys WHERE status = 'active' OR verify_until > ? ORDER BY created_at`).all(now).map(toKey);
  }

  all(): SigningKeyRecord[] {
    return this.db.prepare<[], Row>('SELECT * FROM signing_keys ORDER BY created_at').all().map(toKey);
  }
}
