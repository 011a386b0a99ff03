import type { ErrorCode } from './index.js';
import { isCredbrokerError } from './index.js';

/** The one place where error codes become process exit codes. */
const EXIT: Record<ErrorCode, number> = {
  ERR_USAGE: 2,
  ERR_CONFIG: 2,
  ERR_INVALID_DEVICE_ID: 2,
  ERR_INVALID_DURATION: 2,
  ERR_TTL_TOO_LONG: 2,
  ERR_PROFILE_INVALID: 2,
  ERR_BATCH_INVALID: 2,
  ERR_DEVICE_NOT_FOUND: 3,
  ERR_PROFILE_NOT_FOUND: 3,
  ERR_TOKEN_NOT_FOUND: 3,
  ERR_DEVICE_EXISTS: 4,
  ERR_DEVICE_REVOKED: 4,
  ERR_DEVICE_NOT_REVOKED: 4,
  ERR_DEVICE_TOKENS_LIVE: 4,
  ERR_PROFILE_IN_USE: 4,
  ERR_REGISTRY_MISMATCH: 2,
  ERR_GRANT_INVALID: 2,
  ERR_GRANT_NOT_FOUND: 3,
  ERR_GRANT_EXISTS: 4,
  ERR_SCHEMA_TOO_NEW: 5,
  ERR_REGISTRY: 5,
  ERR_REGISTRY_UNAVAILABLE: 5,
  ERR_TOKEN_MALFORMED: 6,
  ERR_TOKEN_ALG: 6,
  ERR_TOKEN_KID: 6,
  ERR_TOKEN_SIGNATURE: 6,
  ERR_TOKEN_EXPIRED: 6,
  ERR_TOKEN_CLAIM: 6,
  ERR_TOKEN_ACL_RESERVED: 6,
  ERR_TOKEN_REVOKED: 6,
  ERR_REFRESH_MALFORMED: 6,
  ERR_REFRESH_UNKNOWN: 6,
  ERR_REFRESH_REPLAYED: 6,
  ERR_CREDENTIAL_EXPIRED: 6,
  ERR_IDENTITY_MISMATCH: 6,
  ERR_CLIENT_ID_MISMATCH: 6,
  ERR_RATE_LIMITED: 7,
  ERR_BROKER_UNREACHABLE: 8,
  ERR_CLAIM_NOT_FOUND: 3,
  ERR_CLAIM_EXISTS: 4,
  ERR_CLAIM_REVOKED: 4,
  ERR_CLAIM_QUOTA: 4,
  ERR_CLAIM_SESSION_HELD: 4,
  ERR_CLAIM_ID_NOT_ALLOWED: 2,
  ERR_CLAIM_MALFORMED: 6,
  ERR_CLAIM_UNKNOWN: 6,
  ERR_CLAIM_EXPIRED: 6,
};

/**
 * A run stopped by Ctrl-C (SIGINT) after keeping what it had done, e.g. a batch
 * provision: 128 + SIGINT, as shells report a process killed by it.
 */
export const EXIT_INTERRUPTED = 130;

export function exitCodeFor(err: unknown): number {
  return isCredbrokerError(err) ? EXIT[err.code] : 1;
}

/** MQTT 3.1.1 CONNACK return codes used by the broker. */
export const CONNACK = {
  /** A client id the broker will not take (a claim for an id that is not a valid device id). */
  IDENTIFIER_REJECTED: 2,
  /** The node is at its connection cap: try again later (or another node). */
  SERVER_UNAVAILABLE: 3,
  BAD_USERNAME_OR_PASSWORD: 4,
  NOT_AUTHORIZED: 5,
} as const;
export type ConnackCode = (typeof CONNACK)[keyof typeof CONNACK];

/**
 * CONNACK 4 for a credential that is itself invalid (forged, expired, malformed,
 * for another user name); CONNACK 5 for a valid credential that is not allowed
 * (revoked, wrong client id, throttled, a token whose ACL holds a `$` pattern;
 * a claim for an id that is already a device); CONNACK 2 for a claim whose client id is no valid device id;
 * CONNACK 3 when it could not be checked because the registry is unreachable
 * (a refresh credential during a database outage: retry later), or for a claim
 * CONNECT over its rate limit (retry later).
 * Anything unexpected is "not authorized".
 */
export function connackCodeFor(err: unknown): ConnackCode {
  if (!isCredbrokerError(err)) return CONNACK.NOT_AUTHORIZED;
  switch (err.code) {
    case 'ERR_REGISTRY_UNAVAILABLE':
    // Over a rate limit (claim CONNECTs): a unit tries again later, where 5 would be final for it.
    case 'ERR_RATE_LIMITED':
      return CONNACK.SERVER_UNAVAILABLE;
    case 'ERR_TOKEN_MALFORMED':
    case 'ERR_TOKEN_ALG':
    case 'ERR_TOKEN_KID':
    case 'ERR_TOKEN_SIGNATURE':
    case 'ERR_TOKEN_EXPIRED':
    case 'ERR_TOKEN_CLAIM':
    case 'ERR_REFRESH_MALFORMED':
    case 'ERR_REFRESH_UNKNOWN':
    case 'ERR_CREDENTIAL_EXPIRED':
    case 'ERR_IDENTITY_MISMATCH':
    case 'ERR_CLAIM_MALFORMED':
    case 'ERR_CLAIM_UNKNOWN':
    case 'ERR_CLAIM_EXPIRED':
      return CONNACK.BAD_USERNAME_OR_PASSWORD;
    case 'ERR_INVALID_DEVICE_ID':
      return CONNACK.IDENTIFIER_REJECTED;
    default:
      return CONNACK.NOT_AUTHORIZED;
  }
}
