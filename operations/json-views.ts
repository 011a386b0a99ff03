import type { AuditEvent, Device, Grant, Profile, SigningKeyRecord } from '../registry/index.js';
import { grantPrincipal } from '../registry/ids.js';
import { formatDuration } from '../util/duration.js';
import { isoOrNull as iso } from '../util/time.js';
import type { ClaimSummary } from './claim.js';
import type { DeviceSummary } from './show.js';

/**
 * The one JSON form of each registry record, times as ISO 8601: what the CLI's
 * `--json` prints and what the API answers, so a script can move between them.
 * Never a hash, a token or a private key.
 */

export function deviceJson(d: Device): Record<string, unknown> {
  return {
    id: d.id, profile: d.profile, status: d.status, revokedReason: d.revokedReason, revokedAt: iso(d.revokedAt),
    tokensValidAfter: d.tokensValidAfter ? iso(d.tokensValidAfter * 1000) : null,
    credentialExpiresAt: iso(d.credentialExpiresAt), createdAt: iso(d.createdAt), lastSeenAt: iso(d.lastSeenAt),
    simulation: d.simulation,
  };
}

/** `show ID --json` and `GET /api/v1/devices/{id}` (the live session is added by the caller, who asked the broker). */
export function deviceSummaryJson(s: DeviceSummary): Record<string, unknown> {
  return {
    device: deviceJson(s.device),
    profile: s.profile ? profileJson(s.profile) : null,
    liveTokens: s.liveTokens.map((t) => ({ jti: t.jti, kid: t.kid, issuedAt: iso(t.issuedAt), expiresAt: iso(t.expiresAt) })),
    deadTokens: s.deadTokens.map(({ token: t, why }) => ({ jti: t.jti, kid: t.kid, issuedAt: iso(t.issuedAt), expiresAt: iso(t.expiresAt), why })),
    refreshCredentials: s.refreshCredentials.map((r) => ({ state: r.state, issuedAt: iso(r.issuedAt), expiresAt: iso(r.expiresAt), usedAt: iso(r.usedAt) })),
    recentAudit: s.recentAudit.map(auditJson),
  };
}

export function auditJson(e: AuditEvent): Record<string, unknown> {
  return { id: e.id, at: iso(e.at), actor: e.actor, action: e.action, deviceId: e.deviceId, details: e.details };
}

export function profileJson(p: Profile, devices?: number): Record<string, unknown> {
  return {
    name: p.name, publish: p.publish, subscribe: p.subscribe, tokenTtl: formatDuration(p.tokenTtlMs), tokenTtlMs: p.tokenTtlMs,
    createdAt: iso(p.createdAt), updatedAt: iso(p.updatedAt), ...(devices === undefined ? {} : { devices }),
  };
}

export function grantJson(g: Grant, status?: string): Record<string, unknown> {
  return {
    name: g.name, principal: grantPrincipal(g.name), ...(status !== undefined && { status }), jti: g.jti, publish: g.publish, subscribe: g.subscribe,
    within: g.within, reason: g.reason, issuedAt: iso(g.issuedAt), expiresAt: iso(g.expiresAt), revokedAt: iso(g.revokedAt),
  };
}

/** Never the claim's hash. */
export function claimJson(s: ClaimSummary): Record<string, unknown> {
  const c = s.claim;
  return {
    name: c.name, profile: c.profile, state: s.state, maxDevices: c.maxDevices, used: s.used, left: s.left,
    idPattern: c.idPattern, allowList: s.allowListSize, brokerUrl: c.brokerUrl, expiresAt: iso(c.expiresAt), createdAt: iso(c.createdAt),
    revokedAt: iso(c.revokedAt), revokedReason: c.revokedReason,
  };
}

/** active; retired (still verifying its tokens until verifyUntil); expired (verifies nothing any more). */
export function keyState(k: SigningKeyRecord, now: number): 'active' | 'retired' | 'expired' {
  if (k.status === 'active') return 'active';
  return (k.verifyUntil ?? 0) > now ? 'retired' : 'expired';
}

/** Public information only. */
export function keyJson(k: SigningKeyRecord, now: number): Record<string, unknown> {
  return { kid: k.kid, alg: k.alg, status: keyState(k, now), createdAt: iso(k.createdAt), retiredAt: iso(k.retiredAt), verifyUntil: iso(k.verifyUntil) };
}
