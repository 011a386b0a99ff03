import type { Branded } from '../registry/index.js';
import { secretFormat } from './prefixed-secret.js';

/**
 * A claim credential (SPEC "Provisioning by claim"): the one secret every unit
 * of a production batch carries, used once per unit to obtain its own
 * credentials set. Transport form `cbcl_` + 43 chars of secret + 6 chars of
 * checksum; the registry keeps only its SHA-256 hash.
 */
export type ClaimCredential = Branded<string, 'ClaimCredential'>;

const FORMAT = secretFormat<ClaimCredential>('cbcl_', 'ERR_CLAIM_MALFORMED', 'claim credential');

/** The recognisable prefix: lets secret scanners find a leaked claim credential. */
export const CLAIM_CREDENTIAL_PREFIX = FORMAT.prefix;

export const newClaimCredential = (): ClaimCredential => FORMAT.create();

/** Prefix only: lets the broker refuse a claim credential given as a device password without any other work. */
export const looksLikeClaimCredential = (text: string): boolean => FORMAT.looksLike(text);

/** @throws CredentialError `ERR_CLAIM_MALFORMED` (before any database lookup) */
export const parseClaimCredential = (text: string): ClaimCredential => FORMAT.parse(text);

export const hashClaimCredential = (c: ClaimCredential): string => FORMAT.hash(c);
