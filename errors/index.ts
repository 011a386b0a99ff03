/**
 * Every failure credbroker reports is a `CredbrokerError` with a stable `code`
 * (the habit borrowed from jose's `ERR_JWT_EXPIRED`). Callers branch on `code`,
 * never on message text; `map.ts` turns codes into CLI exit codes, CONNACK codes
 * and the codes of renewal and claim answers.
 *
 * Messages are written for the person who reads them (a factory engineer, an
 * operator) and must never contain a token, key or refresh credential.
 */
export type ErrorCode =
  | 'ERR_USAGE'
  | 'ERR_CONFIG'
  | 'ERR_INVALID_DEVICE_ID'
  | 'ERR_INVALID_DURATION'
  | 'ERR_TTL_TOO_LONG'
  | 'ERR_DEVICE_NOT_FOUND'
  | 'ERR_DEVICE_EXISTS'
  | 'ERR_DEVICE_REVOKED'
  | 'ERR_PROFILE_NOT_FOUND'
  | 'ERR_PROFILE_INVALID'
  | 'ERR_TOKEN_NOT_FOUND'
  | 'ERR_BATCH_INVALID'
  | 'ERR_SCHEMA_TOO_NEW'
  | 'ERR_REGISTRY'
  | 'ERR_REGISTRY_UNAVAILABLE'
  | 'ERR_TOKEN_MALFORMED'
  | 'ERR_TOKEN_ALG'
  | 'ERR_TOKEN_KID'
  | 'ERR_TOKEN_SIGNATURE'
  | 'ERR_TOKEN_EXPIRED'
  | 'ERR_TOKEN_CLAIM'
  | 'ERR_TOKEN_ACL_RESERVED'
  | 'ERR_TOKEN_REVOKED'
  | 'ERR_REFRESH_MALFORMED'
  | 'ERR_REFRESH_UNKNOWN'
  | 'ERR_REFRESH_REPLAYED'
  | 'ERR_CREDENTIAL_EXPIRED'
  | 'ERR_IDENTITY_MISMATCH'
  | 'ERR_CLIENT_ID_MISMATCH'
  | 'ERR_RATE_LIMITED'
  | 'ERR_THROTTLED'
  | 'ERR_SERVER_BUSY'
  | 'ERR_SESSION_STORE_UNAVAILABLE'
  | 'ERR_BAD_LOGIN'
  | 'ERR_BROKER_UNREACHABLE'
  | 'ERR_DEVICE_NOT_REVOKED'
  | 'ERR_DEVICE_TOKENS_LIVE'
  | 'ERR_PROFILE_IN_USE'
  | 'ERR_REGISTRY_MISMATCH'
  | 'ERR_CLAIM_NOT_FOUND'
  | 'ERR_CLAIM_EXISTS'
  | 'ERR_CLAIM_MALFORMED'
  | 'ERR_CLAIM_UNKNOWN'
  | 'ERR_CLAIM_EXPIRED'
  | 'ERR_CLAIM_REVOKED'
  | 'ERR_CLAIM_ID_NOT_ALLOWED'
  | 'ERR_CLAIM_QUOTA'
  | 'ERR_CLAIM_SESSION_HELD'
  | 'ERR_CLAIM_NOT_CLEAN'
  | 'ERR_GRANT_INVALID'
  | 'ERR_GRANT_NOT_FOUND'
  | 'ERR_GRANT_EXISTS'
  | 'ERR_OPERATOR_NOT_FOUND'
  | 'ERR_OPERATOR_EXISTS'
  | 'ERR_API_UNAUTHENTICATED'
  | 'ERR_API_FORBIDDEN'
  | 'ERR_API_CSRF'
  | 'ERR_API_NO_ROUTE'
  | 'ERR_API_METHOD'
  | 'ERR_API_BODY'
  | 'ERR_API_TOO_LARGE';

export class CredbrokerError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad command-line usage or a value that cannot be parsed. */
export class UsageError extends CredbrokerError {
  constructor(message: string, code: ErrorCode = 'ERR_USAGE') {
    super(code, message);
  }
}

/** Something the registry refused: unknown device, existing device, newer schema... */
export class RegistryError extends CredbrokerError {}

/**
 * The registry's storage cannot be reached at all (a database server down or
 * restarting): nothing was changed, and the same request may succeed later.
 * The broker answers renewals `ERR_UNAVAILABLE` meanwhile; the CLI exits 5.
 */
export class RegistryUnavailableError extends RegistryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_REGISTRY_UNAVAILABLE', message, options);
  }
}

/** A rejected access token or refresh credential (the reason is in `code`). */
export class CredentialError extends CredbrokerError {}

/** A request the API refuses before any operation runs: no credential, a role without the right, no CSRF token, a bad body, an unknown route. */
export class ApiError extends CredbrokerError {}

/** Over a rate limit: the same request may succeed later. */
export class RateLimitedError extends CredbrokerError {
  constructor(message: string) {
    super('ERR_RATE_LIMITED', message);
  }
}

/** A batch file with bad rows; `problems` lists them by line number. */
export class BatchError extends CredbrokerError {
  readonly problems: readonly BatchProblem[];
  constructor(problems: readonly BatchProblem[]) {
    const first = problems.slice(0, 10).map((p) => `line ${p.line}: ${p.message}`).join('; ');
    const more = problems.length > 10 ? ` (and ${problems.length - 10} more)` : '';
    super('ERR_BATCH_INVALID', `batch has ${problems.length} invalid row(s): ${first}${more}; nothing was written (use --skip-invalid to provision the valid rows)`);
    this.problems = problems;
  }
}

export interface BatchProblem {
  readonly line: number;
  readonly id?: string;
  readonly message: string;
}

export function isCredbrokerError(err: unknown): err is CredbrokerError {
  return err instanceof CredbrokerError;
}
