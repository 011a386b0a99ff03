import type { ClaimName, DeviceId, GrantName, Jti, Kid, ProfileName } from './ids.js';
import type {
  AuditEvent, Claim, Operator, OperatorRole, OperatorToken, ClaimedDevice, Device, DeviceStatus, Grant, IssuedToken, Profile, RefreshRecord, RefreshState, RevokedToken, SigningAlg, SigningKeyRecord,
} from './types.js';

/**
 * The tables' rows as both engines read them, and their mappers to the contract's
 * types: one schema, so one mapping. A flag is 0/1 in SQLite and a boolean in
 * PostgreSQL, hence `Flag`.
 */
type Flag = number | boolean;

export interface DeviceRow {
  id: string; profile: string; status: DeviceStatus; revoked_reason: string | null; revoked_at: number | null;
  tokens_valid_after: number; credential_expires_at: number; created_at: number; last_seen_at: number | null; simulation: Flag;
}

export const toDevice = (r: DeviceRow): Device => ({
  id: r.id as DeviceId,
  profile: r.profile as ProfileName,
  status: r.status,
  revokedReason: r.revoked_reason,
  revokedAt: r.revoked_at,
  tokensValidAfter: r.tokens_valid_after,
  credentialExpiresAt: r.credential_expires_at,
  createdAt: r.created_at,
  lastSeenAt: r.last_seen_at,
  simulation: Boolean(r.simulation),
});

export interface ProfileRow { name: string; publish: string; subscribe: string; token_ttl_ms: number; created_at: number; updated_at: number }

export const toProfile = (r: ProfileRow): Profile => ({
  name: r.name as ProfileName,
  publish: JSON.parse(r.publish) as string[],
  subscribe: JSON.parse(r.subscribe) as string[],
  tokenTtlMs: r.token_ttl_ms,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export interface TokenRow { jti: string; device_id: string; kid: string; issued_at: number; expires_at: number; revoked_at: number | null; family: string | null }

export const toToken = (r: TokenRow): IssuedToken => ({
  jti: r.jti as Jti, deviceId: r.device_id as DeviceId, kid: r.kid as Kid,
  issuedAt: r.issued_at, expiresAt: r.expires_at, revokedAt: r.revoked_at, family: (r.family ?? r.jti) as Jti,
});

export const toRevoked = (r: { jti: string; expires_at: number }): RevokedToken => ({ jti: r.jti as Jti, expiresAt: r.expires_at });

export interface GrantRow {
  jti: string; name: string; publish: string; subscribe: string; reason: string | null; within: string | null; kid: string;
  issued_at: number; expires_at: number; revoked_at: number | null;
}

export const toGrant = (r: GrantRow): Grant => ({
  jti: r.jti as Jti, name: r.name as GrantName, publish: JSON.parse(r.publish) as string[], subscribe: JSON.parse(r.subscribe) as string[],
  reason: r.reason, within: r.within, kid: r.kid as Kid, issuedAt: r.issued_at, expiresAt: r.expires_at, revokedAt: r.revoked_at,
});

export interface ClaimRow {
  name: string; profile: string; hash: string; max_devices: number; id_pattern: string | null; has_allow_list: Flag; broker_url: string;
  expires_at: number; created_at: number; revoked_at: number | null; revoked_reason: string | null; simulation: Flag;
}

export const toClaim = (r: ClaimRow): Claim => ({
  name: r.name as ClaimName, profile: r.profile as ProfileName, hash: r.hash, maxDevices: r.max_devices, idPattern: r.id_pattern,
  hasAllowList: Boolean(r.has_allow_list), brokerUrl: r.broker_url, expiresAt: r.expires_at, createdAt: r.created_at, revokedAt: r.revoked_at, revokedReason: r.revoked_reason,
  simulation: Boolean(r.simulation),
});

export interface ClaimedDeviceRow { device_id: string; claim: string; claimed_at: number; address: string | null }

export const toClaimedDevice = (r: ClaimedDeviceRow): ClaimedDevice => ({ deviceId: r.device_id as DeviceId, claim: r.claim as ClaimName, claimedAt: r.claimed_at, address: r.address });

export interface RefreshRow { hash: string; device_id: string; state: RefreshState; issued_at: number; expires_at: number; used_at: number | null }

export const toRefresh = (r: RefreshRow): RefreshRecord => ({
  hash: r.hash, deviceId: r.device_id as DeviceId, state: r.state, issuedAt: r.issued_at, expiresAt: r.expires_at, usedAt: r.used_at,
});

export interface KeyRow {
  kid: string; alg: SigningAlg; status: 'active' | 'retired'; public_jwk: string; private_jwk: string | null; created_at: number; retired_at: number | null; verify_until: number | null;
}

export const toKey = (r: KeyRow): SigningKeyRecord => ({
  kid: r.kid as Kid, alg: r.alg, status: r.status, publicJwk: r.public_jwk, privateJwk: r.private_jwk,
  createdAt: r.created_at, retiredAt: r.retired_at, verifyUntil: r.verify_until,
});

export interface AuditRow { id: number; at: number; actor: string; action: string; device_id: string | null; details: string | null }

export const toAuditEvent = (r: AuditRow): AuditEvent => ({
  id: r.id, at: r.at, actor: r.actor, action: r.action, deviceId: r.device_id,
  details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
});

export interface OperatorRow { name: string; role: OperatorRole; password_hash: string; created_at: number; updated_at: number; last_login_at: number | null }

export const toOperator = (r: OperatorRow): Operator => ({
  name: r.name, role: r.role, passwordHash: r.password_hash, createdAt: r.created_at, updatedAt: r.updated_at, lastLoginAt: r.last_login_at,
});

export interface OperatorTokenRow { hash: string; operator: string; created_at: number; expires_at: number; last_used_at: number | null }

export const toOperatorToken = (r: OperatorTokenRow): OperatorToken => ({
  hash: r.hash, operator: r.operator, createdAt: r.created_at, expiresAt: r.expires_at, lastUsedAt: r.last_used_at,
});
