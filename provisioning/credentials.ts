import type { Actor, DeviceId, Profile, ProvisionedDevice } from '../registry/index.js';
import { hashRefreshCredential, mintAccessToken, newRefreshCredential, type MintedToken } from '../tokens/index.js';
import type { Issuer } from './issuer.js';

/** The credentials file a device receives (SPEC "CLI synopsis"): `DIR/<deviceId>.json`. */
export interface DeviceCredentials {
  deviceId: string;
  brokerUrl: string;
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshCredential: string;
  refreshCredentialExpiresAt: string;
}

/** A device's first set of credentials, minted but not yet stored. */
export interface CredentialSet {
  readonly deviceId: DeviceId;
  readonly profile: Profile;
  readonly token: MintedToken;
  readonly refreshHash: string;
  readonly credentialExpiresAt: number;
  readonly file: DeviceCredentials;
}

export interface IssueOptions {
  readonly brokerUrl: string;
  readonly ttlMs?: number;
  readonly credentialTtlMs?: number;
  readonly now?: number;
}

/** Mints an access token and a refresh credential for a new device (nothing is written). */
export async function mintCredentialSet(issuer: Issuer, deviceId: DeviceId, profile: Profile, opts: IssueOptions): Promise<CredentialSet> {
  const now = opts.now ?? Date.now();
  const token = await mintAccessToken(issuer.keyring, issuer.settings, { deviceId, profile, ttlMs: opts.ttlMs ?? profile.tokenTtlMs, now });
  const refresh = newRefreshCredential();
  const credentialExpiresAt = now + (opts.credentialTtlMs ?? issuer.settings.credentialTtlMs);
  return {
    deviceId, profile, token, refreshHash: hashRefreshCredential(refresh), credentialExpiresAt,
    file: {
      deviceId, brokerUrl: opts.brokerUrl,
      accessToken: token.token, accessTokenExpiresAt: new Date(token.expiresAt).toISOString(),
      refreshCredential: refresh, refreshCredentialExpiresAt: new Date(credentialExpiresAt).toISOString(),
    },
  };
}

/**
 * What the registry stores of a new device's credential set (`devices.provision`). `simulation` marks a `credbroker sim` device.
 * `audit` says who provisioned it (the broker, for a claim) and adds facts to the `device.provision` row.
 */
export function provisionedRecord(set: CredentialSet, simulation = false, audit: { actor: Actor; details?: Record<string, unknown> } = { actor: 'cli' }): ProvisionedDevice {
  return {
    deviceId: set.deviceId, profile: set.profile.name, credentialExpiresAt: set.credentialExpiresAt, simulation, refreshHash: set.refreshHash,
    token: { jti: set.token.jti, kid: set.token.kid, issuedAt: set.token.issuedAt, expiresAt: set.token.expiresAt },
    actor: audit.actor, ...(audit.details && { auditDetails: audit.details }),
  };
}
