import type { Branded } from '../registry/index.js';
import { secretFormat } from './prefixed-secret.js';

/** A refresh credential in its transport form: `cbrt_` + 43 chars of secret + 6 chars of checksum. */
export type RefreshCredential = Branded<string, 'RefreshCredential'>;

const FORMAT = secretFormat<RefreshCredential>('cbrt_', 'ERR_REFRESH_MALFORMED', 'refresh credential');

/** The recognisable prefix: lets secret scanners find a leaked credential. */
export const REFRESH_PREFIX = FORMAT.prefix;

/** 256 random bits with prefix and checksum. */
export const newRefreshCredential = (): RefreshCredential => FORMAT.create();

/** True when the text looks like a refresh credential (prefix only: cheap routing at CONNECT). */
export const looksLikeRefreshCredential = (text: string): boolean => FORMAT.looksLike(text);

/**
 * Checks shape and checksum without any database lookup, so a typo or a forged
 * value is refused before it costs a query.
 * @throws CredentialError `ERR_REFRESH_MALFORMED`
 */
export const parseRefreshCredential = (text: string): RefreshCredential => FORMAT.parse(text);

/** The only form ever stored: SHA-256 hex. */
export const hashRefreshCredential = (c: RefreshCredential): string => FORMAT.hash(c);
