import { isCredbrokerError } from '../errors/index.js';
import { httpStatusFor } from '../errors/map.js';
import type { ApiAnswer } from './types.js';

/**
 * Every failure the API answers: `{"error": {"code", "message"}}` with the
 * status errors/map.ts gives the code (messages never hold a secret). Anything
 * that is no CredbrokerError is a bug: 500 with a fixed line, since its message could hold anything.
 */
export function errorAnswer(err: unknown): ApiAnswer {
  if (!isCredbrokerError(err)) return { status: 500, body: { error: { code: 'ERR_INTERNAL', message: 'internal error (see the broker log)' } } };
  return { status: httpStatusFor(err), body: { error: { code: err.code, message: err.message } } };
}
