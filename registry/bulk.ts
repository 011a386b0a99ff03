/**
 * The tables a whole-registry copy moves, parents before children (foreign keys),
 * with the columns both engines hold (registry-schema-twins keeps them equal).
 * Left out: `settings` (fixed when the target is created, from the source's),
 * the change feed (its sequence numbers belong to one registry), and the engines'
 * own insertion counters (the target numbers the rows as they arrive, in order).
 */
export const BULK_TABLES = {
  profiles: { columns: ['name', 'publish', 'subscribe', 'token_ttl_ms', 'created_at', 'updated_at'], key: ['name'] },
  signing_keys: { columns: ['kid', 'alg', 'status', 'public_jwk', 'private_jwk', 'created_at', 'retired_at', 'verify_until'], key: ['kid'] },
  devices: {
    columns: ['id', 'profile', 'status', 'revoked_reason', 'revoked_at', 'tokens_valid_after', 'credential_expires_at', 'created_at', 'last_seen_at', 'simulation'],
    key: ['id'],
  },
  // Expired token and grant records are left behind: nothing accepts them.
  tokens: { columns: ['jti', 'device_id', 'kid', 'issued_at', 'expires_at', 'revoked_at', 'family'], key: ['jti'], liveBy: 'expires_at' },
  // In insertion order: it breaks ties between a device's credentials issued in the same millisecond.
  refresh_credentials: { columns: ['hash', 'device_id', 'state', 'issued_at', 'expires_at', 'used_at'], key: 'insertion' },
  grants: {
    columns: ['jti', 'name', 'publish', 'subscribe', 'reason', 'within', 'kid', 'issued_at', 'expires_at', 'revoked_at'], key: ['jti'], liveBy: 'expires_at',
  },
  claims: {
    columns: ['name', 'profile', 'hash', 'max_devices', 'id_pattern', 'has_allow_list', 'broker_url', 'expires_at', 'created_at', 'revoked_at', 'revoked_reason', 'simulation'],
    key: ['name'],
  },
  claim_allowed: { columns: ['claim', 'device_id'], key: ['claim', 'device_id'] },
  claim_devices: { columns: ['device_id', 'claim', 'claimed_at', 'address'], key: ['device_id'] },
  // The people who use the console and the API: password hashes and API token hashes only.
  operators: { columns: ['name', 'role', 'password_hash', 'created_at', 'updated_at', 'last_login_at'], key: ['name'] },
  operator_tokens: { columns: ['hash', 'operator', 'created_at', 'expires_at', 'last_used_at'], key: ['hash'], liveBy: 'expires_at' },
  // Oldest first; the target gives the rows new ids in the same order.
  audit: { columns: ['at', 'actor', 'action', 'device_id', 'details'], key: 'insertion' },
} as const satisfies Record<string, BulkTable>;

export interface BulkTable {
  readonly columns: readonly string[];
  /** The unique key that pages the table, in copy order; `insertion`: the engine's insertion order. */
  readonly key: readonly string[] | 'insertion';
  /** Only rows whose column is after the copy's `now`. */
  readonly liveBy?: string;
}

export type BulkTableName = keyof typeof BULK_TABLES;

/** One row: values in the table's `columns` order (booleans may come as 0/1 from SQLite). */
export type BulkRow = readonly unknown[];

/** A page of rows and where the next one starts (engine-specific; null after the last page). */
export interface BulkPage {
  readonly rows: readonly BulkRow[];
  readonly next: unknown;
}
