import type { Branded } from '../registry/index.js';
import { secretFormat } from '../tokens/prefixed-secret.js';

/**
 * An operator's API token (SPEC "Operators"): `cbop_` + 256 random bits + a
 * checksum, the transport form of refresh and claim credentials, so secret
 * scanners find a leaked one and a typo is refused before any lookup. The
 * registry keeps its SHA-256 hash only.
 */
export type OperatorApiToken = Branded<string, 'OperatorApiToken'>;

const FORMAT = secretFormat<OperatorApiToken>('cbop_', 'ERR_BAD_LOGIN', 'operator API token');

export const OPERATOR_TOKEN_PREFIX = FORMAT.prefix;
export const newOperatorToken = (): OperatorApiToken => FORMAT.create();
/** @throws CredentialError `ERR_BAD_LOGIN` */
export const parseOperatorToken = (text: string): OperatorApiToken => FORMAT.parse(text);
export const hashOperatorToken = (t: OperatorApiToken): string => FORMAT.hash(t);
