import type { Db } from './db.js';
import { inOrder, SCHEMA_VERSION } from '../migration-plan.js';
import { RegistryError } from '../../errors/index.js';

/**
 * The migration plan's steps (registry/migration-plan.ts) in SQLite's SQL, applied
 * in order; `PRAGMA user_version` holds how many ran.
 */
const MIGRATIONS = inOrder({
  tables: `CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE profiles (
     name TEXT PRIMARY KEY,
     publish TEXT NOT NULL,          -- JSON array of patterns
     subscribe TEXT NOT NULL,        -- JSON array of patterns
     token_ttl_ms INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL);
   CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     profile TEXT NOT NULL REFERENCES profiles(name),
     status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
     revoked_reason TEXT,
     revoked_at INTEGER,
     tokens_valid_after INTEGER NOT NULL DEFAULT 0,  -- iat (s) cut-off set by restore
     credential_expires_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     last_seen_at INTEGER);
   CREATE INDEX devices_status ON devices(status);
   CREATE TABLE signing_keys (
     kid TEXT PRIMARY KEY,
     alg TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
     public_jwk TEXT NOT NULL,
     private_jwk TEXT,               -- wiped when the key is retired
     created_at INTEGER NOT NULL,
     retired_at INTEGER,
     verify_until INTEGER);          -- retired keys verify until their last token expired
   CREATE TABLE tokens (
     jti TEXT PRIMARY KEY,
     device_id TEXT NOT NULL REFERENCES devices(id),
     kid TEXT NOT NULL,
     issued_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     revoked_at INTEGER);
   CREATE INDEX tokens_device ON tokens(device_id, expires_at);
   CREATE TABLE refresh_credentials (
     hash TEXT PRIMARY KEY,          -- SHA-256 of the credential; the credential itself is never stored
     device_id TEXT NOT NULL REFERENCES devices(id),
     state TEXT NOT NULL CHECK (state IN ('current', 'previous', 'superseded', 'revoked')),
     issued_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     used_at INTEGER);
   CREATE INDEX refresh_device ON refresh_credentials(device_id, state);
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY,
     at INTEGER NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     device_id TEXT,
     details TEXT);
   CREATE INDEX audit_device ON audit(device_id, at);
   CREATE INDEX audit_at ON audit(at);
   CREATE TABLE changes (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     kind TEXT NOT NULL,
     device_id TEXT,
     jti TEXT);`,
  // Pruning finds expired token records by expiry alone (tokens_device leads with the device).
  // With this version the file also runs auto_vacuum=INCREMENTAL: see ensureIncrementalVacuum.
  'tokens-expiry-index': `CREATE INDEX tokens_expiry ON tokens(expires_at);`,
  // Devices that `credbroker sim` provisioned: listed as such, and removed when the run ends.
  'simulation-devices': `ALTER TABLE devices ADD COLUMN simulation INTEGER NOT NULL DEFAULT 0;`,
  // Token families (schema 4). A token obtained by renewal belongs to the family of the
  // token it replaces: `family` is the jti of the family's first token (a first token's
  // family is its own jti), so `revoke --token JTI` revokes every member. Records made
  // before this version start families of their own. Pruning must keep a family's
  // records while any member is live: delete an expired record only when no record of
  // its family has expires_at in the future (tokens_family serves that lookup).
  'token-families': `ALTER TABLE tokens ADD COLUMN family TEXT;
   UPDATE tokens SET family = jti;
   CREATE INDEX tokens_family ON tokens(family, expires_at);`,
  // Provisioning by claim (schema 5). A claim holds the hash of its claim credential and
  // its rules; claim_allowed is its optional allow-list; claim_devices records every
  // device provisioned through it (the quota counts these rows, which outlive a deleted
  // device: a quota is spent, not lent). No foreign key to devices, for that reason.
  claims: `CREATE TABLE claims (
     name TEXT PRIMARY KEY,
     profile TEXT NOT NULL REFERENCES profiles(name),
     hash TEXT NOT NULL UNIQUE,      -- SHA-256 of the claim credential; the credential itself is never stored
     max_devices INTEGER NOT NULL,
     id_pattern TEXT,                -- anchored regular expression source, or NULL for any device id
     has_allow_list INTEGER NOT NULL DEFAULT 0,
     broker_url TEXT NOT NULL,       -- written into every credentials set issued through the claim
     expires_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     revoked_at INTEGER,
     revoked_reason TEXT,
     simulation INTEGER NOT NULL DEFAULT 0);  -- made by \`credbroker sim --claim\`: its devices are simulation devices
   CREATE TABLE claim_allowed (
     claim TEXT NOT NULL REFERENCES claims(name),
     device_id TEXT NOT NULL,
     PRIMARY KEY (claim, device_id)) WITHOUT ROWID;
   CREATE TABLE claim_devices (
     device_id TEXT PRIMARY KEY,
     claim TEXT NOT NULL REFERENCES claims(name),
     claimed_at INTEGER NOT NULL,
     address TEXT);
   CREATE INDEX claim_devices_claim ON claim_devices(claim, claimed_at);`,
  // Grants (schema 6, SPEC "Grants"): short-lived tokens for `grant:NAME`, one row per token minted
  // (never the token). Not in `tokens`: a grant names no device.
  grants: `CREATE TABLE grants (
     jti TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     publish TEXT NOT NULL,          -- JSON array of patterns, as in the token
     subscribe TEXT NOT NULL,
     reason TEXT,
     within TEXT,                    -- the device whose ACL bounded it (--within)
     kid TEXT NOT NULL,
     issued_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     revoked_at INTEGER);
   CREATE INDEX grants_name ON grants(name, expires_at);
   CREATE INDEX grants_expiry ON grants(expires_at);`,
  // Operators (schema 7, SPEC "Operators, the API and the console"): people with a role. The
  // password is an encoded scrypt hash that carries its own salt and cost parameters
  // (operators/password.ts), so the cost can rise later without a migration. API tokens are
  // stored by SHA-256 hash only, as refresh and claim credentials are.
  operators: `CREATE TABLE operators (
     name TEXT PRIMARY KEY,
     role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
     password_hash TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     last_login_at INTEGER);
   CREATE TABLE operator_tokens (
     hash TEXT PRIMARY KEY,          -- SHA-256 of the cbop_ token; the token itself is never stored
     operator TEXT NOT NULL REFERENCES operators(name),
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     last_used_at INTEGER);
   CREATE INDEX operator_tokens_operator ON operator_tokens(operator);`,
});

/**
 * Refuses (closing the connection) a file written by a newer binary. Runs before
 * anything that could write to the file (even `journal_mode = WAL` rewrites the header).
 * @throws RegistryError `ERR_SCHEMA_TOO_NEW`
 */
export function checkSchemaVersion(db: Db): number {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    db.close();
    throw new RegistryError(
      'ERR_SCHEMA_TOO_NEW',
      `registry ${db.name} has schema version ${version} but this credbroker only knows up to ${SCHEMA_VERSION}: upgrade credbroker (the file was not changed)`,
    );
  }
  return version;
}

/** Brings the file up to this binary's schema; refuses a file written by a newer binary. */
export function migrate(db: Db): void {
  const version = checkSchemaVersion(db);
  if (version < SCHEMA_VERSION) {
    db.transaction(() => {
      // Re-read under the write lock: another process may have migrated meanwhile.
      const current = db.pragma('user_version', { simple: true }) as number;
      for (let v = current; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
  }
  ensureIncrementalVacuum(db);
}

const AUTO_VACUUM_INCREMENTAL = 2;

/**
 * A registry made before auto_vacuum=INCREMENTAL was set (schema 1) keeps its
 * free pages for good: switching needs one full VACUUM, which cannot run inside
 * the migration's transaction. Done once here, after it; a VACUUM that loses to
 * another writer (SQLITE_BUSY past the busy timeout) is simply retried on the next open.
 */
function ensureIncrementalVacuum(db: Db): void {
  if (db.pragma('auto_vacuum', { simple: true }) === AUTO_VACUUM_INCREMENTAL) return;
  try {
    db.pragma('auto_vacuum = INCREMENTAL');
    db.exec('VACUUM');
    db.pragma('wal_checkpoint(TRUNCATE)'); // VACUUM wrote the whole file into the WAL
  } catch (err) {
    if (!/^SQLITE_(BUSY|LOCKED)/.test((err as { code?: string }).code ?? '')) throw err;
  }
}
