/**
 * Errors the device client hands to the application. `code` is stable and is
 * what code should switch on; `message` is for people. Neither ever contains
 * an access token or a refresh credential.
 *
 * Codes: the broker's rejection codes (`ERR_RATE_LIMITED`, `ERR_DEVICE_REVOKED`,
 * `ERR_CREDENTIAL_EXPIRED`, `ERR_REFRESH_REPLAYED`, `ERR_FORBIDDEN_TOPIC`,
 * `ERR_BAD_REQUEST`, `ERR_INTERNAL`) and the client's own:
 * `ERR_NOT_CONNECTED`, `ERR_DISCONNECTED`, `ERR_RENEW_TIMEOUT`, `ERR_STOPPED`,
 * `ERR_REFUSED`, `ERR_BAD_CREDENTIALS`, `ERR_PERSIST`, `ERR_SUBSCRIBE_REFUSED`,
 * `ERR_BAD_ANSWER`.
 */
export class DeviceError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'DeviceError';
  }
}
