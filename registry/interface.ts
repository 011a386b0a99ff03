import type { BulkPage, BulkRow, BulkTableName } from './bulk.js';
import type { ClaimName, DeviceId, GrantName, Jti, Kid, ProfileName } from './ids.js';
import type {
  Actor, AuditEvent, AuditQuery, Change, Claim, ClaimedDevice, NewClaim, ChangeKind, Device, DeviceFilter, DeviceRestriction, DeviceStatus, Grant, IssuedToken,
  NewAuditEvent, NewGrant, NewSigningKey, NewToken, Operator, OperatorRole, OperatorToken, Profile, ProfileInput, ProvisionedDevice, RefreshRecord, RefreshState,
  RegistryStats, RevokedToken, ScrubReport, Settings, SigningKeyRecord,
} from './types.js';

/**
 * The registry contract: one interface, one implementation per engine
 * (`registry/sqlite/`, `registry/postgres/`), in the manner of node-oidc-provider's
 * adapters. Nothing above `registry/` names an engine: it gets a `Registry` from
 * `openRegistry(urlOrPath)` and talks to these stores.
 *
 * Rules every engine keeps:
 * - Every method returns a Promise; a failure is a rejected Promise carrying a
 *   CredbrokerError: `RegistryError` (`ERR_REGISTRY`, `ERR_DEVICE_NOT_FOUND`, …),
 *   or `RegistryUnavailableError` (`ERR_REGISTRY_UNAVAILABLE`) when the engine
 *   cannot reach its storage at all (a database server down): retryable.
 * - A call on the root `Registry` runs in a transaction of its own (autocommit).
 *   Calls that must see and change the registry together run in
 *   `transaction(fn)`, on the tx-scoped stores `fn` receives: the transaction is
 *   passed explicitly, never implied by "call this inside a write".
 * - Isolation: a transaction is serializable against other writers for what it
 *   reads through `…ForUpdate` methods and for every row it writes. SQLite gets
 *   this from BEGIN IMMEDIATE (one writer at a time, for the whole file);
 *   PostgreSQL from READ COMMITTED plus `SELECT … FOR UPDATE` on the rows the
 *   `…ForUpdate` methods read (and row locks on what it writes).
 * - Messages never contain a password (URLs are shown redacted), a token, a
 *   refresh credential or a private key.
 */

export interface DeviceStore {
  get(id: string): Promise<Device | undefined>;
  /** @throws RegistryError `ERR_DEVICE_NOT_FOUND` */
  require(id: string): Promise<Device>;
  insert(id: DeviceId, profile: ProfileName, credentialExpiresAt: number, now: number, simulation?: boolean): Promise<void>;
  /**
   * Writes a chunk of freshly provisioned devices: each device row, its first
   * token record, its refresh credential and a `device.provision` audit row.
   * Call in a transaction that first checked `existing` (the chunk commits whole or not at all).
   */
  provision(rows: readonly ProvisionedDevice[], now: number): Promise<void>;
  /** Removes the device row; its tokens and refresh credentials must be gone first (foreign keys). */
  delete(id: DeviceId): Promise<boolean>;
  /** Which of `ids` are already registered. */
  existing(ids: readonly string[]): Promise<Set<string>>;
  /** Ordered by id. A prefix and a cursor are ranges on the primary key, so a page costs its own size. */
  list(filter?: DeviceFilter): Promise<Device[]>;
  /** @returns false when the device was already revoked. */
  revoke(id: DeviceId, reason: string, now: number): Promise<boolean>;
  /** Sets `tokensValidAfter` to now (s). @returns false when the device was not revoked. */
  restore(id: DeviceId, now: number): Promise<boolean>;
  /** Moves a device to another profile (its tokens keep the ACL they were minted with). @returns false when unknown. */
  setProfile(id: DeviceId, profile: ProfileName): Promise<boolean>;
  /** Number of devices per profile name (profiles with none are absent). */
  countByProfile(): Promise<Map<string, number>>;
  countByStatus(): Promise<Record<DeviceStatus, number>>;
  touch(id: DeviceId, now: number): Promise<void>;
  /** Last-seen times of many devices at once (the broker's buffered CONNECT bookkeeping). */
  touchMany(seen: ReadonlyMap<DeviceId, number>): Promise<void>;
  /** Devices whose state the broker must hold in memory: revoked, or restored with a token cut-off. */
  restrictions(): Promise<DeviceRestriction[]>;
}

export interface ProfileStore {
  get(name: string): Promise<Profile | undefined>;
  /** @throws RegistryError `ERR_PROFILE_NOT_FOUND` naming the known profiles. */
  require(name: string): Promise<Profile>;
  /** Ordered by name. */
  list(): Promise<Profile[]>;
  /** Removes the profile; refused (foreign key, `ERR_REGISTRY`) while a device uses it. */
  delete(name: string): Promise<boolean>;
  /** Creates or updates (`createdAt` kept, `updatedAt` = now). */
  set(p: ProfileInput, now?: number): Promise<void>;
}

export interface TokenStore {
  /** Records a minted token; without `family` it starts a family of its own. */
  record(t: NewToken): Promise<void>;
  get(jti: string): Promise<IssuedToken | undefined>;
  /** @returns false when unknown or already revoked. */
  revoke(jti: Jti, now: number): Promise<boolean>;
  /** Revokes every not yet revoked token of a family; returns them. */
  revokeFamily(family: Jti, now: number): Promise<RevokedToken[]>;
  /** The revoked tokens of a family that have not expired yet: what the broker must refuse. */
  revokedLiveOfFamily(family: Jti, now: number): Promise<RevokedToken[]>;
  /** Revokes every live token of a device; returns their jtis. */
  revokeAllOf(deviceId: DeviceId, now: number): Promise<Jti[]>;
  /** Live (unexpired, unrevoked) tokens of a device, oldest first. */
  liveFor(deviceId: DeviceId, now: number): Promise<IssuedToken[]>;
  /** Revoked tokens not expired yet: all of them (the broker's deny list at start) or one device's. */
  revokedLive(now: number, deviceId?: string): Promise<RevokedToken[]>;
  /**
   * Deletes up to `limit` records of tokens that expired before `before`, keeping
   * a family's records while a member is live unless they expired before
   * `familyBefore` (see the SQLite store). Returns how many went.
   */
  pruneExpired(before: number, limit: number, familyBefore?: number): Promise<number>;
  /** When the device's last token expires (ms), or null when it has none. */
  lastExpiryOfDevice(deviceId: DeviceId): Promise<number | null>;
  /** Forgets every token record of a device (deleting it). */
  deleteAllOf(deviceId: DeviceId): Promise<number>;
  /** When the last token signed by `kid` expires (ms), or null. */
  lastExpiryOf(kid: Kid): Promise<number | null>;
}

export interface GrantStore {
  record(g: NewGrant): Promise<void>;
  get(jti: string): Promise<Grant | undefined>;
  /** The grant of this name that is neither expired nor revoked, if any (minting refuses a second). */
  liveOf(name: GrantName, now: number): Promise<Grant | undefined>;
  /** The last grant minted under this name, live or not. */
  latestOf(name: GrantName): Promise<Grant | undefined>;
  /** Every grant on record (with `activeAt`: only those live then), by name then issue time. */
  list(opts?: { activeAt?: number }): Promise<Grant[]>;
  /** Revokes the live grant of this name; returns it (none when nothing was live). */
  revokeLive(name: GrantName, now: number): Promise<Grant[]>;
  /** Revoked grants whose token has not expired: the broker's deny list at start. */
  revokedLive(now: number): Promise<RevokedToken[]>;
  /** Deletes up to `limit` grants that expired before `before`; returns how many went. */
  pruneExpired(before: number, limit: number): Promise<number>;
}

/** Provisioning by claim (SPEC "Provisioning by claim"): claims, their allow-lists, and the devices provisioned through them. */
export interface ClaimStore {
  get(name: string): Promise<Claim | undefined>;
  /**
   * `get`, and the claim's row stays locked against other writers until the
   * transaction ends: claims through one claim are serialised here, so its
   * quota check (`used`) and the device's insert cannot interleave with another
   * claim's (N concurrent claims against a quota of N-k yield exactly N-k).
   * SQLite: BEGIN IMMEDIATE already holds the write lock. PostgreSQL: `SELECT … FOR UPDATE`.
   */
  getForUpdate(name: string): Promise<Claim | undefined>;
  /** @throws RegistryError `ERR_CLAIM_NOT_FOUND` */
  require(name: string): Promise<Claim>;
  /** Ordered by name. */
  list(): Promise<Claim[]>;
  /** A new claim with its allow-list (null: none). */
  insert(c: NewClaim, allowList: readonly string[] | null): Promise<void>;
  /** Whether `deviceId` is on the claim's allow-list. */
  allows(name: string, deviceId: string): Promise<boolean>;
  /** The allow-list itself, in id order. */
  allowed(name: string): Promise<string[]>;
  allowListSize(name: string): Promise<number>;
  /** @returns false when it was already revoked. */
  revoke(name: string, reason: string, now: number): Promise<boolean>;
  setExpiry(name: string, expiresAt: number): Promise<void>;
  /** Devices provisioned through the claim: what its quota has spent (deleted devices included). */
  used(name: string): Promise<number>;
  usedByClaim(): Promise<Map<string, number>>;
  /** One record per device id: an id claimed again after its device was deleted moves to the new claim. */
  recordDevice(deviceId: DeviceId, claim: ClaimName, now: number, address: string | null): Promise<void>;
  /** Devices provisioned through the claim, oldest first, at most `limit`. */
  devices(name: string, limit?: number): Promise<ClaimedDevice[]>;
  /** Names of the claims that provision under `profile`. */
  usingProfile(profile: string): Promise<string[]>;
  /** Removes a claim, its allow-list and its device records (the devices stay). */
  delete(name: string): Promise<void>;
}

export interface RefreshStore {
  /** Stores a new `current` credential (by hash). */
  add(hash: string, deviceId: DeviceId, issuedAt: number, expiresAt: number): Promise<void>;
  find(hash: string): Promise<RefreshRecord | undefined>;
  /**
   * `find`, and the row stays locked against other writers until the transaction
   * ends: the check-and-rotate of a renewal. Two renewals racing with one
   * credential (on two nodes) are serialized here, so exactly one rotates and the
   * other sees it superseded (a replay). SQLite: the transaction's BEGIN IMMEDIATE
   * already holds the write lock. PostgreSQL: `SELECT … FOR UPDATE`.
   * Only meaningful on a transaction's stores.
   */
  findForUpdate(hash: string): Promise<RefreshRecord | undefined>;
  setState(hash: string, state: RefreshState, usedAt?: number | null): Promise<void>;
  /** Every credential of the device in `state`, except `keep`, becomes superseded. */
  supersede(deviceId: DeviceId, state: RefreshState, keep: string): Promise<void>;
  revokeAllOf(deviceId: DeviceId): Promise<void>;
  /** Forgets every credential record of a device (deleting it): an unknown credential is refused. */
  deleteAllOf(deviceId: DeviceId): Promise<void>;
  /** Every credential record of a device, newest first (hashes only: never the credential). */
  forDevice(deviceId: DeviceId): Promise<RefreshRecord[]>;
}

export interface AuditStore {
  append(actor: Actor, action: string, deviceId: string | null, details?: Record<string, unknown> | null, at?: number): Promise<void>;
  /** Many rows in one round trip (the broker's buffered audit). */
  appendMany(rows: readonly NewAuditEvent[]): Promise<void>;
  /** Deletes up to `limit` events older than `before` — only those with one of `actions` when given; returns how many went. */
  prune(before: number, limit: number, actions?: readonly string[]): Promise<number>;
  /** Newest first. */
  query(q?: AuditQuery): Promise<AuditEvent[]>;
}

export interface ChangeStore {
  append(kind: ChangeKind, deviceId: string | null, jti?: string | null, at?: number): Promise<void>;
  /** Every change after `seq`, in order. */
  since(seq: number): Promise<Change[]>;
  /** Deletes up to `limit` changes older than `before`; returns how many went. A pruned seq is never reused. */
  prune(before: number, limit: number): Promise<number>;
  /** The newest seq (0 when none). */
  latest(): Promise<number>;
}

export interface FollowOptions {
  /** How often an engine without push notifications looks for new changes (SQLite), and the catch-up period of one that has them. */
  readonly pollMs?: number;
  /** A failed read of the feed (the registry unreachable): the follower keeps trying, from where it was. */
  readonly onError?: (err: unknown) => void;
  /** The feed is readable again after `onError` (the follower has caught up). */
  readonly onRecover?: () => void;
}

export interface ChangeFollower {
  /** The last seq handed to `onChanges` (or the start). */
  readonly position: number;
  close(): Promise<void>;
}

/** The root change feed: the store plus following it. */
export interface ChangeFeed extends ChangeStore {
  /**
   * Hands every change after `fromSeq` to `onChanges`, in order, batch by batch,
   * each batch once `onChanges` for the previous one has settled. None is ever
   * skipped: after a lost connection the follower catches up by sequence
   * number. SQLite polls `PRAGMA data_version` every `pollMs`; PostgreSQL
   * LISTENs (NOTIFY on every append) and catches up by seq after each (re)connect.
   */
  follow(fromSeq: number, onChanges: (changes: readonly Change[]) => void | Promise<void>, opts?: FollowOptions): ChangeFollower;
}

export interface KeyStore {
  add(k: NewSigningKey, now: number): Promise<void>;
  /** Retires a key: it stops signing at once (private half wiped) and verifies until `verifyUntil`; on a retired key only `verifyUntil` moves. */
  retire(kid: Kid, verifyUntil: number, now: number): Promise<void>;
  /**
   * Keys that can still verify a token at `now`: the active one and retired ones
   * not yet past `verify_until`, oldest first. In a transaction, the key set is
   * held until it ends (two rotations at once: the second sees the first's key).
   */
  usable(now: number): Promise<SigningKeyRecord[]>;
  all(): Promise<SigningKeyRecord[]>;
}

/** Operators and their API tokens (SPEC "Operators"): hashes only, never a password or token. */
export interface OperatorStore {
  get(name: string): Promise<Operator | undefined>;
  /** Ordered by name. */
  list(): Promise<Operator[]>;
  /** @returns false when the name is taken. */
  insert(name: string, role: OperatorRole, passwordHash: string, now: number): Promise<boolean>;
  /** @returns false when there is no such operator. */
  setPassword(name: string, passwordHash: string, now: number): Promise<boolean>;
  touchLogin(name: string, now: number): Promise<void>;
  /** Removes the operator and every API token of theirs; false when there was none. */
  delete(name: string): Promise<boolean>;
  addToken(hash: string, operator: string, expiresAt: number, now: number): Promise<void>;
  findToken(hash: string): Promise<OperatorToken | undefined>;
  touchToken(hash: string, now: number): Promise<void>;
  /** Live API tokens per operator (expired ones are not counted). */
  liveTokenCounts(now: number): Promise<Map<string, number>>;
}

export interface SettingsStore {
  /** The stored settings over the defaults. */
  read(): Promise<Settings>;
  /** Writes only keys not yet set: settings are fixed at first use. */
  seed(values: Partial<Settings>): Promise<void>;
  /** A secret kept beside the settings but never part of `read()` (the cluster bus keys); null while unset. */
  readSecret(name: string): Promise<string | null>;
  /** Writes `value` only while the stored one is still `expected` (null: unset); false when another writer came first. */
  swapSecret(name: string, expected: string | null, value: string): Promise<boolean>;
}

/** Size and housekeeping of the storage itself. */
export interface SpaceStore {
  /** Bytes on disk (cheap: no table is read). */
  fileSizes(): Promise<{ fileBytes: number; walBytes: number }>;
  /** Sizes plus rows per table. Counting reads every table: keep it off hot paths. */
  stats(): Promise<RegistryStats>;
  /** Gives free space back without waiting on other readers or writers; returns the pages given back (0 where the engine does this itself). */
  reclaim(maxPages?: number): Promise<number>;
  /**
   * Makes overwritten content (a retired private key) unreadable in the storage
   * the engine controls, and says how far it got (`complete` false: another
   * reader still holds the old content; the engine finishes it later by itself).
   */
  scrub(): Promise<ScrubReport>;
}

/**
 * Whole tables, page by page, for a registry copy: read from one engine, written
 * to the other in bulk (PostgreSQL: COPY; SQLite: prepared inserts). Only
 * `registry copy` uses it, into a new, empty registry.
 */
export interface BulkStore {
  /** Rows of `table` after `after` (null: the first page), at most `limit`; `next` is null after the last page. */
  page(table: BulkTableName, now: number, after: unknown, limit: number): Promise<BulkPage>;
  /** Appends rows to `table` (inside a transaction). */
  write(table: BulkTableName, rows: readonly BulkRow[]): Promise<void>;
  /** Empties `table` (inside a transaction): the seeded profiles of a new target. */
  clear(table: BulkTableName): Promise<void>;
}

/** The stores, as the root registry and a transaction both offer them. */
export interface Stores {
  readonly devices: DeviceStore;
  readonly profiles: ProfileStore;
  readonly tokens: TokenStore;
  readonly grants: GrantStore;
  readonly claims: ClaimStore;
  readonly refresh: RefreshStore;
  readonly audit: AuditStore;
  readonly changes: ChangeStore;
  readonly keys: KeyStore;
  readonly settings: SettingsStore;
  readonly operators: OperatorStore;
  readonly bulk: BulkStore;
  /**
   * Runs `fn` in one write transaction and resolves to its result; a rejection
   * rolls all of it back. Transactions of one process run one at a time, and
   * `fn` should do registry work only (sign tokens before, write files after):
   * a transaction holds the write lock (SQLite: the whole file) while it runs.
   * On a transaction's stores, `transaction` joins it (the outer one decides).
   * `durable`: the commit is on disk before this resolves, for what must survive a
   * power loss once reported done (a revocation, a killed key).
   */
  transaction<T>(fn: (tx: RegistryTx) => Promise<T>, opts?: TransactionOptions): Promise<T>;
}

export interface TransactionOptions {
  readonly durable?: boolean;
}

/** The stores of one open transaction. */
export type RegistryTx = Stores;

export interface Registry extends Stores {
  readonly changes: ChangeFeed;
  readonly space: SpaceStore;
  /** Where this registry lives, fit for messages and logs: a file path, or a URL with its password removed. */
  readonly location: string;
  /** Closes the connections; a follower still open is closed first. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Settings written at creation (`init`); ignored for keys already set. */
  readonly init?: Partial<Settings>;
  /**
   * For commands that only read: nothing is created or seeded, and an engine that
   * can opens read-only (SQLite: a file the operator may only read).
   */
  readonly readonly?: boolean;
}

/**
 * What an engine module (`registry/sqlite/index.ts`, `registry/postgres/index.ts`)
 * exports: `openRegistry` loads it and calls `open`. `open` creates the schema
 * (or migrates it) and seeds the default settings and profiles on first use
 * unless `readonly`, and refuses a registry with a newer schema (`ERR_SCHEMA_TOO_NEW`).
 */
export interface RegistryEngine {
  open(target: string, opts: OpenOptions): Promise<Registry>;
}
