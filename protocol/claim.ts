/**
 * The wire contract of provisioning by claim (SPEC "Provisioning by claim"),
 * shared by the broker, the device client and the simulator: one definition
 * of the user name, the topics, the payloads and the rejection codes.
 */

/** A claim session's MQTT user name is this prefix followed by the claim's name. */
export const CLAIM_USERNAME_PREFIX = 'claim:';

export const claimUsername = (claim: string): string => `${CLAIM_USERNAME_PREFIX}${claim}`;

/** The claim name of a claim session's user name, or null when `username` is not one. */
export function claimNameOf(username: string | undefined): string | null {
  return username !== undefined && username.startsWith(CLAIM_USERNAME_PREFIX) ? username.slice(CLAIM_USERNAME_PREFIX.length) : null;
}

/** The topics of the claim of one device id: the only ones its claim session may use. */
export const claimTopics = (deviceId: string) => ({
  provision: `$claims/${deviceId}/provision`,
  accepted: `$claims/${deviceId}/provision/accepted`,
  rejected: `$claims/${deviceId}/provision/rejected`,
  filter: `$claims/${deviceId}/provision/+`,
});

/**
 * Codes of a `…/provision/rejected` answer. `unavailable` and `rate_limited`
 * mean "try again later" (in a new session); the others are final for that id
 * and claim.
 */
export type ClaimRejectionCode =
  | 'id_not_allowed' | 'id_exists' | 'quota_exhausted' | 'claim_expired' | 'claim_revoked' | 'rate_limited' | 'bad_request' | 'unavailable';

const CLAIM_REJECTION_CODES: ReadonlySet<string> = new Set<ClaimRejectionCode>([
  'id_not_allowed', 'id_exists', 'quota_exhausted', 'claim_expired', 'claim_revoked', 'rate_limited', 'bad_request', 'unavailable',
]);

export const isClaimRejectionCode = (code: unknown): code is ClaimRejectionCode => typeof code === 'string' && CLAIM_REJECTION_CODES.has(code);

export const CLAIM_RETRYABLE: ReadonlySet<string> = new Set<ClaimRejectionCode>(['rate_limited', 'unavailable']);

/** Published on `…/provision`. */
export interface ClaimRequestBody { requestId: string }

/** On `…/provision/accepted`: the credentials-file object plus the request id. */
export interface ClaimAcceptedBody {
  requestId: string;
  deviceId: string;
  brokerUrl: string;
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshCredential: string;
  refreshCredentialExpiresAt: string;
}

/** On `…/provision/rejected`. */
export interface ClaimRejectedBody { requestId: string | null; code: ClaimRejectionCode; message: string }
