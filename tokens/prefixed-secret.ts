import { createHash } from 'node:crypto';
import { randomBytesPooled } from '../util/random.js';
import { CredentialError, type ErrorCode } from '../errors/index.js';

/**
 * The transport form shared by credbroker's long-lived secrets (refresh and
 * claim credentials): a recognisable prefix (secret scanners find a leaked
 * one), 256 random bits, and a 6-character checksum (a typo is refused before
 * any database lookup). Only a SHA-256 hash is ever stored: with 256 bits of
 * entropy no slow KDF is needed.
 */
export interface SecretFormat<T extends string> {
  readonly prefix: string;
  create(): T;
  /** Prefix only: cheap routing at CONNECT. */
  looksLike(text: string): boolean;
  /** @throws CredentialError with the format's malformed code */
  parse(text: string): T;
  hash(secret: T): string;
}

export function secretFormat<T extends string>(prefix: string, malformed: ErrorCode, what: string): SecretFormat<T> {
  const shape = new RegExp(`^${prefix}([A-Za-z0-9_-]{43})([A-Za-z0-9_-]{6})$`);
  const checksum = (body: string) => createHash('sha256').update(prefix + body).digest().subarray(0, 4).toString('base64url');
  return {
    prefix,
    create() {
      const body = randomBytesPooled(32).toString('base64url');
      return `${prefix}${body}${checksum(body)}` as T;
    },
    looksLike: (text) => text.startsWith(prefix),
    parse(text) {
      const m = shape.exec(text);
      if (!m || checksum(m[1]!) !== m[2]) throw new CredentialError(malformed, `${what} is malformed or has a bad checksum`);
      return text as T;
    },
    hash: (secret) => createHash('sha256').update(secret).digest('hex'),
  };
}
