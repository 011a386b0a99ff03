import { createHash } from 'node:crypto';
import { randomBytesPooled } from '../util/random.js';
import { CredentialError } from '../errors/index.js';
import type { Branded } from '../registry/index.js';

/** A refresh credential in its transport form: `cbrt_` + 43 chars of secret + 6 chars of checksum. */
export type RefreshCredential = Branded<string, 'RefreshCredential'>;

/** The recognisable prefix: lets secret scanners find a leaked credential. */
export const REFRESH_PREFIX = 'cbrt_';
const SHAPE = /^cbrt_([A-Za-z0-9_-]{43})([A-Za-z0-9_-]{6})$/;

const checksum = (body: string) => createHash('sha256').update(REFRESH_PREFIX + body).digest().subarray(0, 4).toString('base64url');

/** 256 random bits with prefix and checksum. */
export function newRefreshCredential(): RefreshCredential {
  const body = randomBytesPooled(32).toString('base64url');
  return `${REFRESH_PREFIX}${body}${checksum(body)}` as RefreshCredential;
}

/** True when the text looks like a refresh credential (prefix only: cheap routing at CONNECT). */
export function looksLikeRefreshCredential(text: string): boolean {
  return text.startsWith(REFRESH_PREFIX);
}

/**
 * Checks shape and checksum without any database lookup, so a typo or a forged
 * value is refused before it costs a query.
 * @throws CredentialError `ERR_REFRESH_MALFORMED`
 */
export function parseRefreshCredential(text: string): RefreshCredential {
  const m = SHAPE.exec(text);
  if (!m || checksum(m[1]!) !== m[2]) throw new CredentialError('ERR_REFRESH_MALFORMED', 'refresh credential is malformed or has a bad checksum');
  return text as RefreshCredential;
}

/** The only form ever stored: SHA-256 hex (the secret has 256 bits of entropy, so no slow KDF is needed). */
export function hashRefreshCredential(c: RefreshCredential): string {
  return createHash('sha256').update(c).digest('hex');
}
