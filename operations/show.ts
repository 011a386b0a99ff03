import type { AuditEvent, Device, IssuedToken, Profile, RefreshState, SyncRegistry } from '../registry/index.js';

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
export function deviceSummary(reg: SyncRegistry, id: string, opts: { now?: number; auditLimit?: number } = {}): DeviceSummary {
  const now = opts.now ?? Date.now();
  const device = reg.devices.require(id);
  return {
    device,
    profile: reg.profiles.get(device.profile),
    liveTokens: reg.tokens.liveFor(device.id, now),
    refreshCredentials: reg.refresh.forDevice(device.id).map(({ state, issuedAt, expiresAt, usedAt }) => ({ state, issuedAt, expiresAt, usedAt })),
    recentAudit: reg.audit.query({ deviceId: device.id, limit: opts.auditLimit ?? 10 }),
  };
}
