/**
 * The wire contract of renewal (SPEC "Renewal"), shared by the broker and the
 * device client: one definition of the topics, the payloads and the rejection
 * codes. Outside clients check these strings: they never change.
 */

/**
 * The renewal topics of one device. Every session may use its own; a
 * refresh-credential session may use nothing else.
 */
export const tokenTopics = (deviceId: string) => ({
  renew: `$devices/${deviceId}/token/renew`,
  accepted: `$devices/${deviceId}/token/accepted`,
  rejected: `$devices/${deviceId}/token/rejected`,
  filter: `$devices/${deviceId}/token/+`,
});

/** Every renewal topic starts so; none of them is an application's message. */
export const TOKEN_TOPIC_PREFIX = '$devices/';

const RENEW = /^\$devices\/([^/]*)\/token\/renew$/;

/** The device id named by a renewal topic, or null when `topic` is not one. */
export function renewTopicDevice(topic: string): string | null {
  return topic.startsWith(TOKEN_TOPIC_PREFIX) ? (RENEW.exec(topic)?.[1] ?? null) : null;
}

/**
 * Codes of a `…/token/rejected` answer (documented in provisioning.md).
 * `ERR_UNAVAILABLE`: the registry cannot be reached (a database outage); retry later.
 */
export type RenewRejectionCode =
  | 'ERR_BAD_REQUEST' | 'ERR_FORBIDDEN_TOPIC' | 'ERR_RATE_LIMITED' | 'ERR_DEVICE_REVOKED'
  | 'ERR_CREDENTIAL_EXPIRED' | 'ERR_REFRESH_REPLAYED' | 'ERR_UNAVAILABLE' | 'ERR_INTERNAL';

export const RENEW_REJECTION_CODES: ReadonlySet<string> = new Set<RenewRejectionCode>([
  'ERR_BAD_REQUEST', 'ERR_FORBIDDEN_TOPIC', 'ERR_RATE_LIMITED', 'ERR_DEVICE_REVOKED',
  'ERR_CREDENTIAL_EXPIRED', 'ERR_REFRESH_REPLAYED', 'ERR_UNAVAILABLE', 'ERR_INTERNAL',
]);

export const isRenewRejectionCode = (code: unknown): code is RenewRejectionCode => typeof code === 'string' && RENEW_REJECTION_CODES.has(code);

/** Rejections after which asking again is pointless: the device is refused, or asked where it may not. */
export const RENEW_TERMINAL: ReadonlySet<RenewRejectionCode> = new Set<RenewRejectionCode>(['ERR_DEVICE_REVOKED', 'ERR_CREDENTIAL_EXPIRED', 'ERR_REFRESH_REPLAYED', 'ERR_FORBIDDEN_TOPIC']);

/** Rejections that ask the device to wait a little before its next try. */
export const RENEW_RETRY_LATER: ReadonlySet<RenewRejectionCode> = new Set<RenewRejectionCode>(['ERR_RATE_LIMITED', 'ERR_UNAVAILABLE']);

/** Published on `…/token/renew`. `ttlSeconds` asks for a shorter lifetime than the profile's. */
export interface RenewRequestBody { requestId: string; ttlSeconds?: number }

/** On `…/token/accepted`; a refresh session's answer also carries the rotated refresh credential. */
export interface RenewAcceptedBody {
  requestId: string;
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshCredential?: string;
  refreshCredentialExpiresAt?: string;
}

/** On `…/token/rejected`; `requestId` is null when none could be read from the request. */
export interface RenewRejectedBody { requestId: string | null; code: RenewRejectionCode; message: string }
