import { UsageError } from '../errors/index.js';

/** A revoke reason as the CLI's `--reason` and the API's `"reason"` take it: one line of 1-500 characters; absent, a default. */
export function parseRevokeReason(raw: string | undefined, what: string): string {
  const reason = (raw ?? 'revoked by operator').trim();
  if (!reason || reason.length > 500 || /[\x00-\x1f\x7f]/.test(reason)) throw new UsageError(`${what} must be one line of 1-500 characters`);
  return reason;
}
