import { UsageError } from '../errors/index.js';

declare const brand: unique symbol;
/** A value of type T that has been checked to be a `Name`. */
export type Branded<T, Name extends string> = T & { readonly [brand]: Name };

/** A validated device id: 1–128 chars of `[A-Za-z0-9._:-]`, not starting with a reserved prefix. */
export type DeviceId = Branded<string, 'DeviceId'>;
/** A token id (the `jti` claim). */
export type Jti = Branded<string, 'Jti'>;
/** A signing key id (the `kid` header, a JWK thumbprint). */
export type Kid = Branded<string, 'Kid'>;
/** A profile name. */
export type ProfileName = Branded<string, 'ProfileName'>;
/** A grant's name (`NAME` of the principal `grant:NAME`). */
export type GrantName = Branded<string, 'GrantName'>;

const DEVICE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const PROFILE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Claim names (and grant names) have the profile-name shape: they follow `claim:` in an MQTT user name. */
const CLAIM_NAME = PROFILE_NAME;

/**
 * User names of sessions that are not devices (SPEC "Identifiers"): `claim:NAME`
 * (provisioning by claim) and `grant:NAME`. No device id may start with them, so
 * a device can never be mistaken for one of those sessions, nor they for it.
 */
export const RESERVED_ID_PREFIXES = ['claim:', 'grant:'] as const;
const reserved = (text: string) => RESERVED_ID_PREFIXES.find((p) => text.startsWith(p));

/** A claim's name (`credbroker claim create NAME`). */
export type ClaimName = Branded<string, 'ClaimName'>;

/**
 * Why so strict: a device id is substituted into ACL topic patterns, so `+`, `#`
 * or `/` in an id would widen that device's rights (ACL injection).
 */
export function isDeviceId(text: unknown): text is DeviceId {
  return typeof text === 'string' && DEVICE_ID.test(text) && reserved(text) === undefined;
}

/** @throws UsageError `ERR_INVALID_DEVICE_ID` with the reason, for display. */
export function parseDeviceId(text: unknown): DeviceId {
  if (isDeviceId(text)) return text;
  throw new UsageError(`invalid device id ${describe(text)}: ${deviceIdProblem(text)}`, 'ERR_INVALID_DEVICE_ID');
}

function deviceIdProblem(text: unknown): string {
  if (typeof text !== 'string') return text === undefined || text === null ? 'it is missing' : `it is a ${typeof text}, not a string`;
  if (text.length === 0) return 'it is empty';
  if (text.length > 128) return `it is ${text.length} characters long (at most 128)`;
  const prefix = reserved(text);
  if (prefix !== undefined && DEVICE_ID.test(text)) return `ids starting with "${prefix}" are reserved for ${prefix === 'claim:' ? 'claim' : 'grant'} sessions`;
  const bad = [...text].find((c) => !/[A-Za-z0-9._:-]/.test(c)) ?? '';
  return `character ${describe(bad)} is not allowed (use letters, digits, '.', '_', ':' and '-')`;
}

/** Shows a user-supplied value safely: quoted, control and non-ASCII characters escaped, long values cut. */
export function describe(text: unknown): string {
  const s = typeof text === 'string' ? text : String(text);
  const shown = JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
  return shown.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The user name (and client id, and token `sub`) of a grant's sessions. */
export const GRANT_PREFIX = 'grant:';

/** A grant's name: as a profile name, it lands only in `grant:NAME`, never in a topic. */
export function parseGrantName(text: unknown): GrantName {
  if (typeof text === 'string' && PROFILE_NAME.test(text)) return text as GrantName;
  throw new UsageError(`invalid grant name ${describe(text)}: use 1–64 letters, digits, '.', '_' or '-'`);
}

/** `grant:NAME` for a grant's name. */
export function grantPrincipal(name: GrantName): DeviceId {
  return `${GRANT_PREFIX}${name}` as DeviceId;
}

/** The grant's name when `principal` is `grant:NAME`, else null. */
export function grantNameOf(principal: string): GrantName | null {
  if (!principal.startsWith(GRANT_PREFIX)) return null;
  const name = principal.slice(GRANT_PREFIX.length);
  return PROFILE_NAME.test(name) ? (name as GrantName) : null;
}

/** `grant:NAME` with a valid name: a grant's user name, client id and token `sub` (never a device id). */
export function isGrantPrincipal(text: unknown): text is DeviceId {
  return typeof text === 'string' && grantNameOf(text) !== null;
}

/**
 * Whom a session or an audit row is about: a device id, or a grant's
 * `grant:NAME` (`audit --device grant:NAME`, `sessions --device grant:NAME`).
 * @throws UsageError `ERR_INVALID_DEVICE_ID`
 */
export function parseSubjectId(text: unknown): DeviceId {
  return isGrantPrincipal(text) ? text : parseDeviceId(text);
}

/** An operator's name: it lands in audit rows as `operator:NAME`, so it is kept to a plain shape. */
export function parseOperatorName(text: unknown): string {
  if (typeof text === 'string' && PROFILE_NAME.test(text)) return text;
  throw new UsageError(`invalid operator name ${describe(text)}: use 1–64 letters, digits, '.', '_' or '-'`);
}

export function parseProfileName(text: unknown): ProfileName {
  if (typeof text === 'string' && PROFILE_NAME.test(text)) return text as ProfileName;
  throw new UsageError(`invalid profile name ${describe(text)}: use 1–64 letters, digits, '.', '_' or '-'`);
}

export function isClaimName(text: unknown): text is ClaimName {
  return typeof text === 'string' && CLAIM_NAME.test(text);
}

export function parseClaimName(text: unknown): ClaimName {
  if (isClaimName(text)) return text;
  throw new UsageError(`invalid claim name ${describe(text)}: use 1–64 letters, digits, '.', '_' or '-'`);
}
