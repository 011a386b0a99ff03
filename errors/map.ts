import type { ErrorCode } from './index.js';
import { isCredbrokerError } from './index.js';
import { CONNACK, type ConnackCode } from '../protocol/connack.js';
import type { ClaimRejectionCode } from '../protocol/claim.js';
import type { RenewRejectionCode } from '../protocol/renewal.js';

/**
 * What one error code becomes where it leaves the process: the CLI's exit code,
 * the CONNACK return code of a refused CONNECT, and the code of a renewal or
 * claim answer (absent: that answer never carries it, and says ERR_INTERNAL or
 * `unavailable` instead).
 */
interface Row {
  readonly exit: number;
  readonly connack: ConnackCode;
  readonly renewal?: RenewRejectionCode;
  readonly claim?: ClaimRejectionCode;
  /** The API's HTTP status, where the exit code's class (httpStatusFor) does not say it. */
  readonly http?: number;
}

/**
 * CONNACK 4 for a credential that is itself invalid (forged, expired, malformed,
 * for another user name, or no credential at all); CONNACK 5 for a valid
 * credential that is not allowed (revoked, wrong client id, throttled, a token
 * whose ACL holds a `$` pattern; a claim for an id that is already a device);
 * CONNACK 2 for a claim whose client id is no valid device id; CONNACK 3 when it
 * could not be checked now (the registry is unreachable, the node at its
 * connection cap, a claim CONNECT over its rate limit): retry later.
 */
const BAD = CONNACK.BAD_USERNAME_OR_PASSWORD;
const NOT = CONNACK.NOT_AUTHORIZED;
const LATER = CONNACK.SERVER_UNAVAILABLE;

/** The one place where error codes become exit codes, CONNACK codes and answer codes. */
const TABLE: Record<ErrorCode, Row> = {
  ERR_USAGE: { exit: 2, connack: NOT },
  ERR_CONFIG: { exit: 2, connack: NOT },
  ERR_INVALID_DEVICE_ID: { exit: 2, connack: CONNACK.IDENTIFIER_REJECTED },
  ERR_INVALID_DURATION: { exit: 2, connack: NOT },
  ERR_TTL_TOO_LONG: { exit: 2, connack: NOT },
  ERR_PROFILE_INVALID: { exit: 2, connack: NOT },
  ERR_BATCH_INVALID: { exit: 2, connack: NOT },
  ERR_DEVICE_NOT_FOUND: { exit: 3, connack: NOT },
  ERR_PROFILE_NOT_FOUND: { exit: 3, connack: NOT },
  ERR_TOKEN_NOT_FOUND: { exit: 3, connack: NOT },
  ERR_DEVICE_EXISTS: { exit: 4, connack: NOT, claim: 'id_exists' },
  ERR_DEVICE_REVOKED: { exit: 4, connack: NOT, renewal: 'ERR_DEVICE_REVOKED' },
  ERR_DEVICE_NOT_REVOKED: { exit: 4, connack: NOT },
  ERR_DEVICE_TOKENS_LIVE: { exit: 4, connack: NOT },
  ERR_PROFILE_IN_USE: { exit: 4, connack: NOT },
  ERR_REGISTRY_MISMATCH: { exit: 2, connack: NOT },
  ERR_GRANT_INVALID: { exit: 2, connack: NOT },
  ERR_GRANT_NOT_FOUND: { exit: 3, connack: NOT },
  ERR_GRANT_EXISTS: { exit: 4, connack: NOT },
  ERR_OPERATOR_NOT_FOUND: { exit: 3, connack: NOT },
  ERR_OPERATOR_EXISTS: { exit: 4, connack: NOT },
  ERR_API_UNAUTHENTICATED: { exit: 6, connack: NOT, http: 401 },
  ERR_API_FORBIDDEN: { exit: 6, connack: NOT, http: 403 },
  ERR_API_CSRF: { exit: 6, connack: NOT, http: 403 },
  ERR_API_NO_ROUTE: { exit: 2, connack: NOT, http: 404 },
  ERR_API_METHOD: { exit: 2, connack: NOT, http: 405 },
  ERR_API_BODY: { exit: 2, connack: NOT, http: 400 },
  ERR_API_TOO_LARGE: { exit: 2, connack: NOT, http: 413 },
  ERR_SCHEMA_TOO_NEW: { exit: 5, connack: NOT },
  ERR_REGISTRY: { exit: 5, connack: NOT },
  // Renamed on the wire: a device knows no registry, only that the broker cannot answer now.
  ERR_REGISTRY_UNAVAILABLE: { exit: 5, connack: LATER, renewal: 'ERR_UNAVAILABLE' },
  ERR_TOKEN_MALFORMED: { exit: 6, connack: BAD },
  ERR_TOKEN_ALG: { exit: 6, connack: BAD },
  ERR_TOKEN_KID: { exit: 6, connack: BAD },
  ERR_TOKEN_SIGNATURE: { exit: 6, connack: BAD },
  ERR_TOKEN_EXPIRED: { exit: 6, connack: BAD },
  ERR_TOKEN_CLAIM: { exit: 6, connack: BAD },
  ERR_TOKEN_ACL_RESERVED: { exit: 6, connack: NOT },
  ERR_TOKEN_REVOKED: { exit: 6, connack: NOT },
  ERR_REFRESH_MALFORMED: { exit: 6, connack: BAD },
  ERR_REFRESH_UNKNOWN: { exit: 6, connack: BAD },
  ERR_REFRESH_REPLAYED: { exit: 6, connack: NOT, renewal: 'ERR_REFRESH_REPLAYED' },
  ERR_CREDENTIAL_EXPIRED: { exit: 6, connack: BAD, renewal: 'ERR_CREDENTIAL_EXPIRED' },
  ERR_IDENTITY_MISMATCH: { exit: 6, connack: BAD },
  ERR_CLIENT_ID_MISMATCH: { exit: 6, connack: NOT },
  // Over a rate limit (claim CONNECTs): a unit tries again later, where 5 would be final for it.
  ERR_RATE_LIMITED: { exit: 7, connack: LATER, renewal: 'ERR_RATE_LIMITED', claim: 'rate_limited' },
  // An address throttled after failed logins, or a device connecting too often: refused unchecked.
  ERR_THROTTLED: { exit: 7, connack: NOT },
  ERR_SERVER_BUSY: { exit: 7, connack: LATER },
  ERR_SESSION_STORE_UNAVAILABLE: { exit: 5, connack: LATER },
  // No credential of the right form where one belongs (user name, password).
  ERR_BAD_LOGIN: { exit: 6, connack: BAD },
  ERR_BROKER_UNREACHABLE: { exit: 8, connack: NOT },
  ERR_CLAIM_NOT_FOUND: { exit: 3, connack: NOT },
  ERR_CLAIM_EXISTS: { exit: 4, connack: NOT },
  ERR_CLAIM_REVOKED: { exit: 4, connack: NOT, claim: 'claim_revoked' },
  ERR_CLAIM_QUOTA: { exit: 4, connack: NOT, claim: 'quota_exhausted' },
  ERR_CLAIM_SESSION_HELD: { exit: 4, connack: NOT },
  ERR_CLAIM_NOT_CLEAN: { exit: 2, connack: NOT },
  ERR_CLAIM_ID_NOT_ALLOWED: { exit: 2, connack: NOT, claim: 'id_not_allowed' },
  ERR_CLAIM_MALFORMED: { exit: 6, connack: BAD },
  // Deleted since the CONNECT (a simulation's claim at the end of its run): as good as revoked.
  ERR_CLAIM_UNKNOWN: { exit: 6, connack: BAD, claim: 'claim_revoked' },
  ERR_CLAIM_EXPIRED: { exit: 6, connack: BAD, claim: 'claim_expired' },
};

/**
 * A run stopped by Ctrl-C (SIGINT) after keeping what it had done, e.g. a batch
 * provision: 128 + SIGINT, as shells report a process killed by it.
 */
export const EXIT_INTERRUPTED = 130;

export function exitCodeFor(err: unknown): number {
  return isCredbrokerError(err) ? TABLE[err.code].exit : 1;
}

/**
 * The HTTP status of an API answer for `err`, by the class of its exit code:
 * bad input 400, not found 404, a conflict with the registry's state 409, a
 * refused credential 401, a limit 429, the registry itself 503; anything
 * unexpected 500.
 */
const HTTP_BY_EXIT: Record<number, number> = { 2: 400, 3: 404, 4: 409, 5: 503, 6: 401, 7: 429 };

export function httpStatusFor(err: unknown): number {
  if (!isCredbrokerError(err)) return 500;
  const row = TABLE[err.code];
  return row.http ?? HTTP_BY_EXIT[row.exit] ?? 500;
}

/** Anything unexpected is "not authorized". */
export function connackCodeFor(err: unknown): ConnackCode {
  return isCredbrokerError(err) ? TABLE[err.code].connack : CONNACK.NOT_AUTHORIZED;
}

/** The code of a `…/token/rejected` answer for a renewal that failed with `err`; anything unexpected is ERR_INTERNAL. */
export function renewalCodeFor(err: unknown): RenewRejectionCode {
  return (isCredbrokerError(err) ? TABLE[err.code].renewal : undefined) ?? 'ERR_INTERNAL';
}

/** The code of a `…/provision/rejected` answer for a claim that failed with `err`, or null when the failure is the broker's own. */
export function claimCodeFor(err: unknown): ClaimRejectionCode | null {
  return (isCredbrokerError(err) ? TABLE[err.code].claim : undefined) ?? null;
}
