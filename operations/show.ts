import type { AuditEvent, Device, IssuedToken, Profile, RefreshState, Stores } from '../registry/index.js';

export interface DeviceSummary {
  readonly device: Device;
  /** The device's profile as it is now (tokens carry the ACL of when they were minted). */
  readonly profile: Profile | undefined;
  /** Tokens not expired and not revoked, oldest first. */
  readonly liveTokens: IssuedToken[];
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
  const [profile, liveTokens, refresh, recentAudit] = await Promise.all([
    reg.profiles.get(device.profile),
    reg.tokens.liveFor(device.id, now),
    reg.refresh.forDevice(device.id),
    reg.audit.query({ deviceId: device.id, limit: opts.auditLimit ?? 10 }),
  ]);
  return {
    device, profile, liveTokens, recentAudit,
    refreshCredentials: refresh.map(({ state, issuedAt, expiresAt, usedAt }) => ({ state, issuedAt, expiresAt, usedAt })),
  };
}
