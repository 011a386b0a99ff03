import type { ClaimName, DeviceId, GrantName, Jti, Kid, ProfileName } from './ids.js';

/**
 * The registry's records as every engine returns them (SQLite and PostgreSQL
 * alike): times are epoch milliseconds unless a field says otherwise, and no
 * record ever holds a token, a refresh credential or (outside SigningKeyRecord)
 * a private key.
 */

export type DeviceStatus = 'active' | 'revoked';

export interface Device {
  readonly id: DeviceId;
  readonly profile: ProfileName;
  readonly status: DeviceStatus;
  readonly revokedReason: string | null;
  readonly revokedAt: number | null;
  /** Tokens issued (iat, seconds) before this are dead: set by `restore`. */
  readonly tokensValidAfter: number;
  /** End of the device's credential lifetime (ms): no renewal past it. */
  readonly credentialExpiresAt: number;
  readonly createdAt: number;
  readonly lastSeenAt: number | null;
  /** Provisioned by `credbroker sim`: removed when the run ends (unless `--keep`). */
  readonly simulation: boolean;
}

export interface DeviceFilter {
  readonly status?: DeviceStatus;
  readonly profile?: string;
  /** Only ids that start with this. */
  readonly prefix?: string;
  /** Only ids after this one (the paging cursor: the list is ordered by id). */
  readonly after?: string;
  readonly limit?: number | null;
}

/** What the broker holds in memory per restricted device: revoked, or restored with a token cut-off. */
export type DeviceRestriction = Pick<Device, 'id' | 'status' | 'tokensValidAfter'>;

/** A named ACL template: patterns may use `{device}`, `+` and `#`. */
export interface Profile {
  readonly name: ProfileName;
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  readonly tokenTtlMs: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type ProfileInput = Pick<Profile, 'name' | 'publish' | 'subscribe' | 'tokenTtlMs'>;

/** What the registry remembers of a minted access token: never the token itself. */
export interface IssuedToken {
  readonly jti: Jti;
  readonly deviceId: DeviceId;
  readonly kid: Kid;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
  /** The jti of the first token of its family: renewals stay in the family of the token they replace. */
  readonly family: Jti;
}

/** A token to record; without `family` it starts a family of its own. */
export type NewToken = Omit<IssuedToken, 'revokedAt' | 'family'> & { readonly family?: Jti };

/** What the registry remembers of a grant (SPEC "Grants"): never its token. */
export interface Grant {
  readonly jti: Jti;
  readonly name: GrantName;
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  readonly reason: string | null;
  /** The device whose ACL the grant was checked against (`--within`), if any. */
  readonly within: string | null;
  readonly kid: Kid;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
}

export type NewGrant = Omit<Grant, 'revokedAt'>;

/** A revoked token that has not expired yet: what the broker must refuse. */
export interface RevokedToken {
  readonly jti: Jti;
  readonly expiresAt: number;
}

/**
 * Rotation states of a refresh credential (SPEC "Renewal"):
 * - `current`: the newest one handed out;
 * - `previous`: the one before it, still accepted until `current` has been used once
 *   (a device that lost the answer to its renewal must not be locked out), and at
 *   most for the broker's grace window (`refreshGraceMs`) after its rotation (`usedAt`);
 * - `superseded`: replaced and no longer accepted; presenting it is a theft signal;
 * - `revoked`: killed with its device.
 */
export type RefreshState = 'current' | 'previous' | 'superseded' | 'revoked';

export interface RefreshRecord {
  /** SHA-256 of the credential: the credential itself is never stored. */
  readonly hash: string;
  readonly deviceId: DeviceId;
  readonly state: RefreshState;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly usedAt: number | null;
}

/** Who did it: `cli` (an operator or factory line), `broker`, or a device (`device:<id>`). */
export type Actor = 'cli' | 'broker' | `device:${string}` | `operator:${string}`;

export type OperatorRole = 'viewer' | 'operator' | 'admin';

/** A person who works the registry through the API or console (SPEC "Operators"). */
export interface Operator {
  readonly name: string;
  readonly role: OperatorRole;
  /** Encoded scrypt hash with its salt and parameters (operators/password.ts); never the password. */
  readonly passwordHash: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly lastLoginAt: number | null;
}

/** An operator's API token, by hash (never the token). */
export interface OperatorToken {
  readonly hash: string;
  readonly operator: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly lastUsedAt: number | null;
}

export interface AuditEvent {
  readonly id: number;
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly deviceId: string | null;
  /** Free-form facts: reasons, jtis, counts. Never a token, key or refresh credential. */
  readonly details: Record<string, unknown> | null;
}

/** An audit row to append (`at` defaults to now). */
export interface NewAuditEvent {
  readonly actor: Actor;
  readonly action: string;
  readonly deviceId: string | null;
  readonly details?: Record<string, unknown> | null;
  readonly at?: number;
}

export interface AuditQuery {
  readonly deviceId?: string;
  readonly since?: number;
  /** An exact action (`device.revoke`), or a prefix ending in `*` (`device.*`). */
  readonly action?: string;
  /** Only events older than this event id (the paging cursor: newest first). */
  readonly before?: number;
  /** Default 100; null for no limit. */
  readonly limit?: number | null;
}

/**
 * `retained_clear`: the broker deletes the retained messages the device published (revoke without --keep-retained).
 * `grant_revoked`: `deviceId` is the principal `grant:NAME`, `jti` the grant's token.
 */
export type ChangeKind = 'device_revoked' | 'device_restored' | 'token_revoked' | 'keys_rotated' | 'device_deleted' | 'retained_clear' | 'grant_revoked';

/** One entry of the change feed: a monotonic sequence that never reuses a pruned number. */
export interface Change {
  readonly seq: number;
  readonly at: number;
  readonly kind: ChangeKind;
  readonly deviceId: string | null;
  readonly jti: string | null;
}

export type SigningAlg = 'ES256' | 'EdDSA';

/** A signing key as stored: the private JWK is present only while the key is active. */
export interface SigningKeyRecord {
  readonly kid: Kid;
  readonly alg: SigningAlg;
  readonly status: 'active' | 'retired';
  readonly publicJwk: string;
  readonly privateJwk: string | null;
  readonly createdAt: number;
  readonly retiredAt: number | null;
  readonly verifyUntil: number | null;
}

export type NewSigningKey = Pick<SigningKeyRecord, 'kid' | 'alg' | 'publicJwk' | 'privateJwk'>;

/** Registry-wide settings chosen at `init` (or defaulted on first use). */
export interface Settings {
  /** `iss` of every token. */
  readonly issuer: string;
  /** `aud` of every token: the broker. */
  readonly audience: string;
  readonly alg: SigningAlg;
  /** Upper bound on any access token's lifetime (ms), enforced at minting. */
  readonly maxTokenTtlMs: number;
  /** Default lifetime of a device's refresh credential (ms). */
  readonly credentialTtlMs: number;
  /** Upper bound on a grant's lifetime (ms), enforced at `credbroker grant` (never above maxTokenTtlMs). */
  readonly maxGrantTtlMs: number;
}

/**
 * A freshly provisioned device with its first token and refresh credential:
 * one row of a factory batch. The engine writes all of it (device, token record,
 * refresh credential, `device.provision` audit row) in the caller's transaction,
 * in bulk where it can (PostgreSQL: a statement per table, a column per parameter).
 */
export interface ProvisionedDevice {
  readonly deviceId: DeviceId;
  readonly profile: ProfileName;
  readonly credentialExpiresAt: number;
  readonly simulation: boolean;
  readonly token: { readonly jti: Jti; readonly kid: Kid; readonly issuedAt: number; readonly expiresAt: number };
  readonly refreshHash: string;
  /** Who provisioned it (default `cli`; the broker, for a claim). */
  readonly actor?: Actor;
  /** Facts added to the `device.provision` audit row (besides profile and jti). */
  readonly auditDetails?: Record<string, unknown>;
}

/**
 * What `credbroker show --stats` and the broker's registry gauges report. The
 * field names are a contract (`show --stats --json`); an engine without a
 * notion fills it as its comment says.
 */
export interface RegistryStats {
  /** Bytes of the registry on disk (PostgreSQL: pg_database_size). */
  readonly fileBytes: number;
  /** Bytes of a write-ahead log kept for this registry alone (SQLite's -wal file); 0 where the log is the server's, shared by all its databases. */
  readonly walBytes: number;
  readonly pageSize: number;
  readonly pages: number;
  /**
   * Pages inside the file that hold nothing (given back by `reclaim`); null where
   * the engine keeps and reuses free space inside its tables by itself without
   * counting it here (PostgreSQL's free space map).
   */
  readonly freePages: number | null;
  /** SQLite's auto_vacuum mode; null where the engine reclaims dead rows by itself (PostgreSQL's autovacuum). */
  readonly autoVacuum: 'none' | 'full' | 'incremental' | null;
  /**
   * Row versions deleted or overwritten but not yet vacuumed (PostgreSQL's
   * n_dead_tup, all tables); null where a delete frees its space at once (SQLite's free list).
   */
  readonly deadRows: number | null;
  /** How this engine gets space back, in its own terms: one line for `show --stats`. */
  readonly upkeep: string;
  /** Rows per table, by table name. */
  readonly rows: Readonly<Record<string, number>>;
  /**
   * Bytes per table with its indexes (PostgreSQL: pg_total_relation_size); null
   * where only reading every page would tell (SQLite).
   */
  readonly tableBytes: Readonly<Record<string, number>> | null;
}

/** What `SpaceStore.scrub` did, in the engine's terms. */
export interface ScrubReport {
  /** The overwritten content is gone from the storage the engine controls; false: the engine finishes it later by itself. */
  readonly complete: boolean;
  /** One line: what was run and what it left (`keys rotate` prints it when not complete). */
  readonly detail: string;
}

/** A claim (SPEC "Provisioning by claim"): the rules under which units of a batch provision themselves. */
export interface Claim {
  readonly name: ClaimName;
  readonly profile: ProfileName;
  /** SHA-256 of the claim credential (never the credential). */
  readonly hash: string;
  readonly maxDevices: number;
  /** Source of the regular expression a claimed id must match whole; null: any device id. */
  readonly idPattern: string | null;
  readonly hasAllowList: boolean;
  /** The broker address written into each credentials set issued through the claim. */
  readonly brokerUrl: string;
  readonly expiresAt: number;
  readonly createdAt: number;
  readonly revokedAt: number | null;
  readonly revokedReason: string | null;
  /** Made by `credbroker sim`: devices provisioned through it are simulation devices, removed with the run. */
  readonly simulation: boolean;
}

/** A device provisioned through a claim. */
export interface ClaimedDevice {
  readonly deviceId: DeviceId;
  readonly claim: ClaimName;
  readonly claimedAt: number;
  /** The address the claim came from (for the audit trail). */
  readonly address: string | null;
}

export type NewClaim = Pick<Claim, 'name' | 'profile' | 'hash' | 'maxDevices' | 'idPattern' | 'brokerUrl' | 'expiresAt' | 'createdAt' | 'simulation'>;
