import { timingSafeEqual } from 'node:crypto';
import { CredentialError, RegistryError, UsageError } from '../errors/index.js';
import type { Actor, Claim, ClaimedDevice, ClaimName, DeviceId, Stores } from '../registry/index.js';
import { parseClaimName, parseDeviceId, describe } from '../registry/index.js';
import { hashClaimCredential, newClaimCredential, parseClaimCredential, type ClaimCredential } from '../tokens/index.js';
import { mintCredentialSet, provisionedRecord, type DeviceCredentials, type Issuer } from '../provisioning/index.js';
import { formatDuration } from '../util/duration.js';
import { compileLinearRegex, type LinearRegex } from '../util/linear-regex.js';

/** Quota of a claim created without --max-devices (and without an allow-list, whose size is the default then). */
export const DEFAULT_CLAIM_MAX_DEVICES = 1000;
export const DEFAULT_CLAIM_TTL_MS = 90 * 86_400_000;
/** Longest claim lifetime: a claim credential is flashed into a batch, not into a product line for ever. */
export const MAX_CLAIM_TTL_MS = 3650 * 86_400_000;
const MAX_PATTERN_CHARS = 256;

export interface CreateClaimInput {
  readonly name: string;
  readonly profile: string;
  /** Written into every credentials set issued through the claim (checked by the caller: `parseBrokerUrl`). */
  readonly brokerUrl: string;
  readonly maxDevices?: number;
  readonly ttlMs?: number;
  /** A regular expression a claimed id must match whole (it is anchored; the syntax of util/linear-regex.ts). */
  readonly idPattern?: string;
  /** The factory's list of serials: only these ids may be claimed. */
  readonly allowList?: readonly string[];
  /** Made by `credbroker sim`: devices claimed through it are simulation devices. */
  readonly simulation?: boolean;
  /** Who asked (audited): `cli` by default, `operator:NAME` through the API. */
  readonly actor?: Actor;
  readonly now?: number;
}

export type ClaimState = 'active' | 'expired' | 'revoked' | 'exhausted';

export interface ClaimSummary {
  readonly claim: Claim;
  readonly used: number;
  readonly left: number;
  readonly allowListSize: number | null;
  readonly state: ClaimState;
}

/**
 * `credbroker claim create`: a claim and its credential, which is returned once
 * and stored only as a hash. Audited as `claim.create` (rules only).
 * @throws UsageError (bad name, pattern, quota, lifetime, allow-list) | RegistryError `ERR_PROFILE_NOT_FOUND` | `ERR_CLAIM_EXISTS`
 */
export async function createClaim(reg: Stores, input: CreateClaimInput): Promise<{ claim: Claim; credential: ClaimCredential }> {
  const now = input.now ?? Date.now();
  const name = parseClaimName(input.name);
  const idPattern = input.idPattern === undefined ? null : checkIdPattern(input.idPattern);
  const allowList = input.allowList === undefined ? null : checkAllowList(input.allowList, idPattern);
  const maxDevices = input.maxDevices ?? allowList?.length ?? DEFAULT_CLAIM_MAX_DEVICES;
  if (!Number.isInteger(maxDevices) || maxDevices < 1 || maxDevices > 10_000_000) throw new UsageError(`invalid --max-devices ${maxDevices}: expected a whole number from 1 to 10000000`);
  const ttlMs = checkClaimTtl(input.ttlMs ?? DEFAULT_CLAIM_TTL_MS);
  const credential = newClaimCredential();
  return reg.transaction(async (tx) => {
    const profile = await tx.profiles.require(input.profile);
    if (await tx.claims.get(name)) throw new RegistryError('ERR_CLAIM_EXISTS', `claim "${name}" exists already (claim names are never reused: pick another, or see credbroker claim show ${name})`);
    await tx.claims.insert({ name, profile: profile.name, hash: hashClaimCredential(credential), maxDevices, idPattern, brokerUrl: input.brokerUrl, expiresAt: now + ttlMs, createdAt: now, simulation: input.simulation ?? false }, allowList);
    await tx.audit.append(input.actor ?? 'cli', 'claim.create', null, {
      claim: name, profile: profile.name, maxDevices, idPattern, allowList: allowList?.length ?? null, expiresAt: now + ttlMs,
    }, now);
    return { claim: await tx.claims.require(name), credential };
  });
}

/** A claim with what its quota has spent, and whether it still provisions. */
export async function claimSummary(reg: Stores, claim: Claim, used?: number, now = Date.now()): Promise<ClaimSummary> {
  const spent = used ?? await reg.claims.used(claim.name);
  const left = Math.max(0, claim.maxDevices - spent);
  const state: ClaimState = claim.revokedAt !== null ? 'revoked' : claim.expiresAt <= now ? 'expired' : left === 0 ? 'exhausted' : 'active';
  return { claim, used: spent, left, allowListSize: claim.hasAllowList ? await reg.claims.allowListSize(claim.name) : null, state };
}

export async function listClaims(reg: Stores, now = Date.now()): Promise<ClaimSummary[]> {
  const used = await reg.claims.usedByClaim();
  return Promise.all((await reg.claims.list()).map((c) => claimSummary(reg, c, used.get(c.name) ?? 0, now)));
}

/** `claim show`: the summary and the devices provisioned through it (at most `limit`). */
export async function showClaim(reg: Stores, name: string, limit = 1000): Promise<ClaimSummary & { devices: ClaimedDevice[] }> {
  const claim = await reg.claims.require(name);
  return { ...(await claimSummary(reg, claim)), devices: await reg.claims.devices(claim.name, limit) };
}

/**
 * `claim revoke`: no further claims. Devices already provisioned through it
 * are ordinary devices and keep working. Durable before it returns.
 * @returns false when it was already revoked
 */
export function revokeClaim(reg: Stores, name: string, reason: string, actor: Actor = 'cli', now = Date.now()): Promise<boolean> {
  return reg.transaction(async (tx) => {
    const claim = await tx.claims.require(name);
    const changed = await tx.claims.revoke(claim.name, reason, now);
    if (changed) await tx.audit.append(actor, 'claim.revoke', null, { claim: claim.name, reason, used: await tx.claims.used(claim.name) }, now);
    return changed;
  }, { durable: true });
}

/**
 * `claim extend`: the claim now expires `ttlMs` from now (an expired claim
 * opens again). A revoked claim stays revoked. An "extend" that would bring the
 * expiry closer is refused unless `allowShorten`: `--ttl 14d` on a 90-day claim
 * reads as "14 more days", and would silently take 76 away.
 * @throws RegistryError `ERR_CLAIM_NOT_FOUND` | `ERR_CLAIM_REVOKED` | UsageError (shortening)
 */
export async function extendClaim(reg: Stores, name: string, ttlMs: number, now = Date.now(), opts: { allowShorten?: boolean } = {}): Promise<Claim & { previousExpiresAt: number }> {
  checkClaimTtl(ttlMs);
  return reg.transaction(async (tx) => {
    const claim = await tx.claims.require(name);
    if (claim.revokedAt !== null) throw new RegistryError('ERR_CLAIM_REVOKED', `claim "${claim.name}" is revoked: create a new claim instead`);
    const to = now + ttlMs;
    if (to < claim.expiresAt && !opts.allowShorten) {
      throw new UsageError(`--ttl ${formatDuration(ttlMs)} would shorten claim "${claim.name}" (expires ${new Date(claim.expiresAt).toISOString()}, would expire ${new Date(to).toISOString()}): the new expiry is --ttl from now; give a longer --ttl, or --allow-shorten`);
    }
    await tx.claims.setExpiry(claim.name, to);
    await tx.audit.append('cli', 'claim.extend', null, { claim: claim.name, from: claim.expiresAt, to }, now);
    return { ...(await tx.claims.require(claim.name)), previousExpiresAt: claim.expiresAt };
  });
}

/** Removes a simulation's claim (its device records go with it; the devices are removed by the sim's clean-up). */
export function removeSimulationClaim(reg: Stores, name: string): Promise<boolean> {
  return reg.transaction(async (tx) => {
    const c = await tx.claims.get(name);
    if (!c?.simulation) return false;
    await tx.claims.delete(c.name);
    return true;
  });
}

/**
 * The CONNECT check of a claim session (SPEC "Provisioning by claim"): the
 * credential's shape and checksum (no lookup for a typo), then the claim's
 * hash, expiry and revocation. The hash comparison takes constant time.
 * @throws CredentialError `ERR_CLAIM_MALFORMED` | `ERR_CLAIM_UNKNOWN` | `ERR_CLAIM_EXPIRED` (CONNACK 4);
 *   `ERR_CLAIM_REVOKED` (CONNACK 5)
 */
export async function authenticateClaim(reg: Stores, name: ClaimName, secret: string, now = Date.now()): Promise<Claim> {
  const hash = hashClaimCredential(parseClaimCredential(secret));
  const claim = await reg.claims.get(name);
  if (!claim || !timingSafeEqual(Buffer.from(claim.hash, 'hex'), Buffer.from(hash, 'hex'))) throw new CredentialError('ERR_CLAIM_UNKNOWN', 'unknown claim or wrong claim credential');
  if (claim.revokedAt !== null) throw new CredentialError('ERR_CLAIM_REVOKED', 'claim is revoked');
  if (claim.expiresAt <= now) throw new CredentialError('ERR_CLAIM_EXPIRED', 'claim has expired');
  return claim;
}

export interface ClaimRequest {
  readonly claim: ClaimName;
  readonly deviceId: DeviceId;
  /** Where the claim came from (audit only). */
  readonly address?: string | null;
  readonly actor?: Actor;
}

/**
 * Issues a credentials set under a claim's rules. The rules are checked first
 * (so a refusal costs no signature), then the set is minted, then checked again
 * and stored in ONE write transaction with the claim's row locked
 * (`claims.getForUpdate`): concurrent claims, on any number of nodes, are
 * serialised there, so a quota of N yields exactly N devices however many race,
 * and an id that exists is never issued a second set.
 * @throws CredentialError `ERR_CLAIM_UNKNOWN` | `ERR_CLAIM_EXPIRED` | `ERR_CLAIM_REVOKED`;
 *   RegistryError `ERR_CLAIM_ID_NOT_ALLOWED` | `ERR_DEVICE_EXISTS` | `ERR_CLAIM_QUOTA`
 */
export async function provisionByClaim(issuer: Issuer, req: ClaimRequest): Promise<DeviceCredentials> {
  const { reg } = issuer;
  const first = await checkRules(reg, await reg.claims.get(req.claim), req, Date.now());
  const profile = await reg.profiles.require(first.profile);
  const set = await mintCredentialSet(issuer, req.deviceId, profile, { brokerUrl: first.brokerUrl });
  const now = Date.now();
  await reg.transaction(async (tx) => {
    const claim = await checkRules(tx, await tx.claims.getForUpdate(req.claim), req, now);
    const details = { claim: claim.name, ...(req.address ? { address: req.address } : {}) };
    await tx.devices.provision([provisionedRecord(set, claim.simulation, { actor: req.actor ?? 'broker', details })], now);
    await tx.claims.recordDevice(req.deviceId, claim.name, now, req.address ?? null);
  });
  return set.file;
}

/** Every rule of a claim (as read by the caller) for one id, in the order of the wire codes' precedence. */
async function checkRules(reg: Stores, claim: Claim | undefined, req: ClaimRequest, now: number): Promise<Claim> {
  if (!claim) throw new CredentialError('ERR_CLAIM_UNKNOWN', 'unknown claim');
  if (claim.revokedAt !== null) throw new CredentialError('ERR_CLAIM_REVOKED', 'the claim is revoked');
  if (claim.expiresAt <= now) throw new CredentialError('ERR_CLAIM_EXPIRED', 'the claim has expired');
  if (claim.idPattern !== null && !matchesPattern(claim.idPattern, req.deviceId)) {
    throw new RegistryError('ERR_CLAIM_ID_NOT_ALLOWED', 'the device id does not match the claim\'s id pattern');
  }
  if (claim.hasAllowList && !(await reg.claims.allows(claim.name, req.deviceId))) throw new RegistryError('ERR_CLAIM_ID_NOT_ALLOWED', 'the device id is not on the claim\'s allow-list');
  if (await reg.devices.get(req.deviceId)) throw new RegistryError('ERR_DEVICE_EXISTS', 'the device id is already a device');
  if ((await reg.claims.used(claim.name)) >= claim.maxDevices) throw new RegistryError('ERR_CLAIM_QUOTA', 'the claim\'s device quota is used up');
  return claim;
}

/**
 * Compiled id patterns by source: a claim is checked on every request, its
 * pattern compiled once. They run in linear time (util/linear-regex.ts): the id
 * is chosen by whoever holds the claim credential. Bounded: claims are few.
 */
const patterns = new Map<string, LinearRegex | UsageError>();
function compiled(source: string): LinearRegex | UsageError {
  let re = patterns.get(source);
  if (!re) {
    if (patterns.size >= 256) patterns.clear();
    try {
      re = compileLinearRegex(source);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      re = err;
    }
    patterns.set(source, re);
  }
  return re;
}

const warned = new Set<string>();
/**
 * Whether a claimed id matches the claim's pattern. A pattern stored by an older
 * version in syntax that the linear matcher does not run refuses every id with
 * that reason, written on the broker's stderr once per process and pattern.
 * @throws RegistryError `ERR_CLAIM_ID_NOT_ALLOWED` for such a pattern
 */
function matchesPattern(source: string, id: string): boolean {
  const re = compiled(source);
  if (!(re instanceof UsageError)) return re.test(id);
  const why = `the claim's id pattern ${describe(source)} is not supported (${re.message}): recreate the claim with a supported --id-pattern`;
  if (!warned.has(source)) {
    warned.add(source);
    process.emitWarning(`claims are refused: ${why}`, { code: 'CREDBROKER_ID_PATTERN' });
  }
  throw new RegistryError('ERR_CLAIM_ID_NOT_ALLOWED', why);
}

function checkIdPattern(source: string): string {
  if (source.length === 0 || source.length > MAX_PATTERN_CHARS) throw new UsageError(`invalid --id-pattern: give 1–${MAX_PATTERN_CHARS} characters`);
  const re = compiled(source);
  if (re instanceof UsageError) throw new UsageError(`invalid --id-pattern ${describe(source)}: ${re.message}`);
  return source;
}

function checkAllowList(ids: readonly string[], idPattern: string | null): string[] {
  if (ids.length === 0) throw new UsageError('the allow-list is empty: give at least one device id (or leave out --allow-list)');
  const out = [...new Set(ids.map((id) => parseDeviceId(id)))];
  const outside = idPattern === null ? [] : out.filter((id) => !matchesPattern(idPattern, id));
  if (outside.length) throw new UsageError(`${outside.length} id(s) of the allow-list do not match --id-pattern (e.g. ${describe(outside[0])}): they could never be claimed`);
  return out;
}

function checkClaimTtl(ttlMs: number): number {
  if (!(ttlMs > 0) || ttlMs > MAX_CLAIM_TTL_MS) throw new UsageError(`invalid --ttl ${formatDuration(ttlMs)}: a claim lives at most ${formatDuration(MAX_CLAIM_TTL_MS)}`, 'ERR_TTL_TOO_LONG');
  return ttlMs;
}
