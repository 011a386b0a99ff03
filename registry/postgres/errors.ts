import { isCredbrokerError, RegistryError, RegistryUnavailableError } from '../../errors/index.js';
import { redactSecrets } from '../location.js';

/** Socket-level failures: the server is down, restarting, or unreachable. */
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

/** What node-postgres says when a connection dies or cannot be made (it sets no code). */
const NET_MESSAGES = /^(Connection terminated|timeout expired|Client has encountered a connection error|Client was closed|Query read timeout)/;

/**
 * SQLSTATEs that mean "try again later": class 08 (connection exception), the
 * server shutting down or starting (57P01-57P03), too many connections (53300).
 */
const UNAVAILABLE_STATE = /^(08...|57P0[123]|53300)$/;

/** Deadlock and serialization failure: the transaction can simply run again. */
export function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === '40P01' || code === '40001';
}

/** Whether `err` (raw or mapped) means the database could not be reached. */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof RegistryUnavailableError) return true;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  return NET_CODES.has(code) || UNAVAILABLE_STATE.test(code) || (typeof e?.message === 'string' && NET_MESSAGES.test(e.message));
}

/**
 * Turns a node-postgres failure into a CredbrokerError an operator can act on:
 * `RegistryUnavailableError` when the server cannot be reached (retryable),
 * `RegistryError` otherwise. `where` is the redacted URL: the password never
 * appears, and neither do query parameters (the driver's messages carry none).
 */
export function asPgRegistryError(err: unknown, where: string): unknown {
  if (isCredbrokerError(err)) return err;
  if (!(err instanceof Error)) return err;
  const e = err as Error & { code?: string; severity?: string };
  // Belt and braces: no driver message is known to carry the password, but a URL in one would.
  const first = redactSecrets(String(e.message ?? '').split('\n')[0] ?? '');
  if (isUnavailable(err)) {
    return new RegistryUnavailableError(`registry ${where} is unavailable (${first}); try again when the database is back`, { cause: err });
  }
  // node-postgres, when the server asks for a password and none was given (no ~/.pgpass entry, no PGPASSWORD).
  if (/client password must be a string/.test(first)) {
    return new RegistryError('ERR_REGISTRY', `registry ${where}: the database asks for a password and none was given: put it in ~/.pgpass or PGPASSWORD (or the URL, postgres://USER:PASSWORD@HOST/DB)`, { cause: err });
  }
  if (e.code === '28P01' || e.code === '28000') {
    return new RegistryError('ERR_REGISTRY', `registry ${where}: the database refused the login (${first}): check the user and password`, { cause: err });
  }
  if (e.code === '3D000') {
    return new RegistryError('ERR_REGISTRY', `registry ${where}: ${first}: create it first (createdb)`, { cause: err });
  }
  if (e.code === '53100') {
    return new RegistryError('ERR_REGISTRY', `registry ${where}: the database server's disk is full; the last transaction was rolled back`, { cause: err });
  }
  return new RegistryError('ERR_REGISTRY', `registry ${where}: ${e.code ? `${e.code}: ` : ''}${first}`, { cause: err });
}
