import type { ClaimRejectionCode } from '../protocol/claim.js';
import type { RenewRejectionCode } from '../protocol/renewal.js';

/**
 * The client's own codes: `ERR_NOT_CONNECTED`, `ERR_DISCONNECTED`,
 * `ERR_RENEW_TIMEOUT`, `ERR_STOPPED`, `ERR_REFUSED`, `ERR_BAD_CREDENTIALS`,
 * `ERR_PERSIST`, `ERR_SUBSCRIBE_REFUSED`, `ERR_BAD_ANSWER`.
 */
export type DeviceClientCode =
  | 'ERR_NOT_CONNECTED' | 'ERR_DISCONNECTED' | 'ERR_RENEW_TIMEOUT' | 'ERR_STOPPED' | 'ERR_REFUSED'
  | 'ERR_BAD_CREDENTIALS' | 'ERR_PERSIST' | 'ERR_SUBSCRIBE_REFUSED' | 'ERR_BAD_ANSWER';

/** A DeviceError's code: the broker's renewal and claim rejection codes (protocol/), or the client's own. */
export type DeviceErrorCode = RenewRejectionCode | ClaimRejectionCode | DeviceClientCode;

/**
 * Errors the device client hands to the application. `code` is stable and is
 * what code should switch on; `message` is for people. Neither ever contains
 * an access token or a refresh credential.
 */
export class DeviceError extends Error {
  constructor(readonly code: DeviceErrorCode, message: string) {
    super(message);
    this.name = 'DeviceError';
  }
}
