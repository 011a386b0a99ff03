import { verify as cryptoVerify } from 'node:crypto';
import { base64url, errors as joseErrors, UnsecuredJWT } from 'jose';
import { CredentialError } from '../errors/index.js';
import type { Settings, SigningAlg } from '../registry/index.js';
import { isCanonicalBase64url } from '../util/base64url.js';
import type { AccessTokenClaims } from './claims.js';
import type { VerifyKey } from './keyring.js';

export interface VerifyOptions {
  readonly issuer: string;
  readonly audience: string;
  /** Clock leeway for `exp`/`nbf`/`iat`, seconds (default 5). */
  readonly leewaySec?: number;
  /** Algorithms accepted (default ES256 and EdDSA). `none` and HMAC can never be allowed. */
  readonly algorithms?: readonly SigningAlg[];
  /**
   * The registry's cap on a token's lifetime (`exp − iat`), seconds: a token over it
   * is refused whatever its signature says, and so is one whose `iat` lies ahead.
   */
  readonly maxLifetimeSec?: number;
  readonly now?: Date;
}

/** The options a registry's tokens are verified with: its issuer, audience and lifetime cap. */
export function registryVerifyOptions(settings: Pick<Settings, 'issuer' | 'audience' | 'maxTokenTtlMs'>, leewaySec?: number): VerifyOptions {
  // Minting rounds the lifetime up to whole seconds: a token of exactly the cap passes.
  return { issuer: settings.issuer, audience: settings.audience, leewaySec, maxLifetimeSec: Math.ceil(settings.maxTokenTtlMs / 1000) };
}

export interface VerifiedToken {
  readonly claims: AccessTokenClaims;
  readonly kid: string;
}

const NONE_HEADER = base64url.encode(JSON.stringify({ alg: 'none' }));
const SIGNATURE_BYTES: Record<SigningAlg, number> = { ES256: 64, EdDSA: 64 };
const DEFAULT_ALGS: readonly SigningAlg[] = ['ES256', 'EdDSA'];
/** Headers that point at keys chosen by the token's author: never honoured, so refused. */
const KEY_POINTER_HEADERS = ['jku', 'jwk', 'x5u', 'x5c'];

const fail = (code: ConstructorParameters<typeof CredentialError>[0], message: string): never => {
  throw new CredentialError(code, message);
};

/**
 * Verifies a credbroker access token: the broker calls this on every CONNECT.
 *
 * Why not `jose.jwtVerify`: jose 6 verifies through WebCrypto, whose async
 * round trip costs about as much as the ECDSA maths itself. Here the signature is
 * checked synchronously with node:crypto against a key imported once, and the
 * claims (`iss`, `aud`, `exp`, `nbf`, `iat`, required claims) are still validated
 * by jose's own claim-set validator (via `UnsecuredJWT.decode` on the verified
 * payload), so no claim rule is re-implemented here.
 *
 * @throws CredentialError with code ERR_TOKEN_MALFORMED | ERR_TOKEN_ALG | ERR_TOKEN_KID |
 *   ERR_TOKEN_SIGNATURE | ERR_TOKEN_EXPIRED | ERR_TOKEN_CLAIM
 * @example
 * const { claims } = verifyAccessToken(password, keyring.verifyKeys, { issuer, audience });
 */
export function verifyAccessToken(token: string, keys: ReadonlyMap<string, VerifyKey>, opts: VerifyOptions): VerifiedToken {
  const t = prepare(token, keys, opts);
  if (!cryptoVerify(t.hash, t.signed, t.keyArg, t.signature)) fail('ERR_TOKEN_SIGNATURE', 'token signature invalid');
  return claimsOf(t, opts);
}

interface Prepared {
  readonly key: VerifyKey;
  readonly hash: 'sha256' | null;
  readonly keyArg: VerifyKey['key'] | { key: VerifyKey['key']; dsaEncoding: 'ieee-p1363' };
  readonly signed: Buffer;
  readonly signature: Buffer;
  readonly payload: string;
}

/** Shape, header (algorithm allow-list, no `crit`, no self-named keys), known `kid`, signature length. */
function prepare(token: string, keys: ReadonlyMap<string, VerifyKey>, opts: VerifyOptions): Prepared {
  const parts = token.split('.');
  if (parts.length !== 3) fail('ERR_TOKEN_MALFORMED', 'not a JWS compact token');
  const [h, p, s] = parts as [string, string, string];
  if (!isCanonicalBase64url(h) || !isCanonicalBase64url(p) || !isCanonicalBase64url(s)) fail('ERR_TOKEN_MALFORMED', 'token segment is not canonical base64url');
  const key = keyForHeader(h, keys);
  if (!(opts.algorithms ?? DEFAULT_ALGS).includes(key.alg)) fail('ERR_TOKEN_ALG', 'token algorithm not allowed');
  // Checked here as well as by the keyring's reload: exact at the instant, whatever the timers do.
  if ((opts.now?.getTime() ?? Date.now()) >= key.verifyUntil) fail('ERR_TOKEN_KID', 'token signing key retired');

  const signature = Buffer.from(s, 'base64url');
  if (signature.length !== SIGNATURE_BYTES[key.alg]) fail('ERR_TOKEN_SIGNATURE', 'token signature invalid');
  const es256 = key.alg === 'ES256';
  return {
    key, signature, payload: p,
    signed: Buffer.from(`${h}.${p}`, 'latin1'),
    hash: es256 ? 'sha256' : null,
    keyArg: es256 ? { key: key.key, dsaEncoding: 'ieee-p1363' } : key.key,
  };
}

/**
 * Headers already accepted, per key set. A keyring signs every token with one of
 * a handful of byte-identical headers, so a CONNECT skips decoding and checking
 * the header again. Only accepted headers are kept, and only a few: headers
 * varied on purpose cannot grow the cache.
 */
const acceptedHeaders = new WeakMap<ReadonlyMap<string, VerifyKey>, Map<string, VerifyKey>>();
const MAX_ACCEPTED_HEADERS = 16;

/** The key a header names, once the header passes every check (`alg` is re-checked against the caller's allow-list). */
function keyForHeader(h: string, keys: ReadonlyMap<string, VerifyKey>): VerifyKey {
  let accepted = acceptedHeaders.get(keys);
  const known = accepted?.get(h);
  if (known) return known;
  const key = checkHeader(h, keys);
  if (!accepted) acceptedHeaders.set(keys, (accepted = new Map()));
  if (accepted.size < MAX_ACCEPTED_HEADERS) accepted.set(h, key);
  return key;
}

function checkHeader(h: string, keys: ReadonlyMap<string, VerifyKey>): VerifyKey {
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return fail('ERR_TOKEN_MALFORMED', 'token header is not JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('ERR_TOKEN_MALFORMED', 'token header is not an object');
  const alg = header.alg;
  if (typeof alg !== 'string' || !(DEFAULT_ALGS as readonly string[]).includes(alg)) fail('ERR_TOKEN_ALG', 'token algorithm not allowed');
  if ('crit' in header) fail('ERR_TOKEN_MALFORMED', 'token has critical header extensions');
  if (KEY_POINTER_HEADERS.some((k) => k in header)) fail('ERR_TOKEN_MALFORMED', 'token header names its own key');
  if (header.typ !== undefined && header.typ !== 'JWT') fail('ERR_TOKEN_MALFORMED', 'token typ is not JWT');
  const key = typeof header.kid === 'string' ? keys.get(header.kid) : undefined;
  if (!key) return fail('ERR_TOKEN_KID', 'token signing key unknown');
  if (key.alg !== alg) fail('ERR_TOKEN_ALG', 'token algorithm does not match its key');
  return key;
}

/** The claims, by jose's claim-set validator, plus the credbroker-specific shape checks. */
function claimsOf(t: Prepared, opts: VerifyOptions): VerifiedToken {
  let claims: AccessTokenClaims;
  try {
    claims = UnsecuredJWT.decode(`${NONE_HEADER}.${t.payload}.`, {
      issuer: opts.issuer,
      audience: opts.audience,
      clockTolerance: opts.leewaySec ?? 5,
      requiredClaims: ['iat', 'exp', 'jti', 'sub'],
      // Refuses an `iat` in the future (beyond the leeway); an age over the cap cannot pass the lifetime check below anyway.
      maxTokenAge: opts.maxLifetimeSec,
      currentDate: opts.now,
    }).payload as unknown as AccessTokenClaims;
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return fail('ERR_TOKEN_EXPIRED', 'token expired');
    if (err instanceof joseErrors.JWTClaimValidationFailed) return fail('ERR_TOKEN_CLAIM', `token claim "${err.claim}" check failed: ${err.reason}`);
    return fail('ERR_TOKEN_MALFORMED', 'token claims are malformed');
  }
  if (!isAclClaim(claims.acl) || typeof claims.jti !== 'string' || typeof claims.sub !== 'string') fail('ERR_TOKEN_MALFORMED', 'token acl claim is malformed');
  // `"exp": 1e400` parses to Infinity, which jose's numeric checks let through.
  if (!Number.isFinite(claims.exp) || !Number.isFinite(claims.iat)) fail('ERR_TOKEN_MALFORMED', 'token exp/iat is not a finite number');
  if (opts.maxLifetimeSec !== undefined && claims.exp - claims.iat > opts.maxLifetimeSec) fail('ERR_TOKEN_CLAIM', 'token lifetime is above the registry cap');
  // Its private half was wiped at retirement: a later token was signed by someone else.
  if (claims.iat - (opts.leewaySec ?? 5) > t.key.retiredAt / 1000) fail('ERR_TOKEN_CLAIM', 'token issued after its signing key was retired');
  return { claims, kid: t.key.kid };
}

function isAclClaim(v: unknown): v is AccessTokenClaims['acl'] {
  if (v === null || typeof v !== 'object') return false;
  const { pub, sub } = v as Record<string, unknown>;
  const strings = (a: unknown) => Array.isArray(a) && a.every((x) => typeof x === 'string');
  return strings(pub) && strings(sub);
}
