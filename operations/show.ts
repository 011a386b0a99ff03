import type { AuditEvent, Device, IssuedToken, Profile, RefreshState, Stores } from '../registry/index.js';

export interface DeviceSummary {
  readonly device: Device;
  /** The device's profile as it is now (tokens carry the ACL of when they were minted). */
  readonly profile: Profile | undefined;
  /** Tokens not expired, not revoked and signed by a key that still verifies, oldest first. */
  readonly liveTokens: IssuedToken[];
  /** Tokens not expired nor revoked, but dead all the same: their signing key was killed (`keys rotate --now`). */
  readonly deadTokens: { readonly token: IssuedToken; readonly why: 'key_killed' }[];
  /** Refresh credentials by state (hashes are never shown). */
  readonly refreshCredentials: { readonly state: RefreshState; readonly issuedAt: number; readonly expiresAt: number; readonly usedAt: number | null }[];
  /** Newest first. */
  readonly recentAudit: AuditEvent[];
}

/**
 * Everything `credbroker show ID` prints: the device, its live tokens by jti and
 * expiry, its refresh credentials' states and its recent audit events.
 * @throws RegistryError `ERR_DEVICE_NOT_FOUND`
 */
export async function deviceSummary(reg: Stores, id: string, opts: { now?: number; auditLimit?: number } = {}): Promise<DeviceSummary> {
  const now = opts.now ?? Date.now();
  const device = await reg.devices.require(id);
  const [profile, unexpired, refresh, recentAudit, usable] = await Promise.all([
    reg.profiles.get(device.profile),
    reg.tokens.liveFor(device.id, now),
    reg.refresh.forDevice(device.id),
    reg.audit.query({ deviceId: device.id, limit: opts.auditLimit ?? 10 }),
    reg.keys.usable(now),
  ]);
  const verifying = new Set(usable.map((k) => k.kid));
  return {
    device, profile, recentAudit,
    liveTokens: unexpired.filter((t) => verifying.has(t.kid)),
    deadTokens: unexpired.filter((t) => !verifying.has(t.kid)).map((token) => ({ token, why: 'key_killed' as const })),
    refreshCredentials: refresh.map(({ state, issuedAt, expiresAt, usedAt }) => ({ state, issuedAt, expiresAt, usedAt })),
  };
}
