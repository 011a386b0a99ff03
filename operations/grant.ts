import { AclPatternError, firstOutside, substituteDevice, ungrantable, validatePattern, type AclRules } from '../acl/index.js';
import { RegistryError, UsageError } from '../errors/index.js';
import type { Issuer } from '../provisioning/index.js';
import {
  describe, grantPrincipal, parseDeviceId, parseGrantName, type Actor, type Grant, type GrantName, type Stores,
} from '../registry/index.js';
import { mintToken } from '../tokens/index.js';
import { formatDuration } from '../util/duration.js';

export interface GrantRequest {
  readonly name: string;
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  readonly ttlMs: number;
  /** Every pattern must lie inside this device's own ACL; `{device}` in a pattern stands for it. */
  readonly within?: string;
  readonly reason?: string;
  /** The lifetime as the operator typed it (`--ttl 48h`), for the error. */
  readonly ttlGiven?: string;
  /** The broker's password limit (its maxPasswordBytes): a longer token could never connect. */
  readonly maxTokenBytes?: number;
  readonly actor?: Actor;
  readonly now?: number;
}

export interface IssuedGrant {
  readonly grant: Grant;
  /** The grant token: a bearer secret, shown once and never stored. */
  readonly token: string;
}

/** Longest reason: it travels in the token, which must stay within the broker's password limit. */
export const MAX_GRANT_REASON = 200;

/**
 * `credbroker grant` (SPEC "Grants"): mints a token for the principal
 * `grant:NAME` carrying exactly the given patterns, and records the grant
 * (never the token). Refused: a pattern that is a broker topic (`$devices/…`,
 * `$claims/…`, `$SYS`), a lifetime above the registry's grant cap, with
 * `within` a pattern outside that device's ACL, and a name whose earlier grant
 * is still live (revoke it first).
 * @throws UsageError `ERR_GRANT_INVALID` | `ERR_TTL_TOO_LONG` | `ERR_INVALID_DEVICE_ID`;
 *   RegistryError `ERR_GRANT_EXISTS` | `ERR_DEVICE_NOT_FOUND` | `ERR_DEVICE_REVOKED` | `ERR_PROFILE_NOT_FOUND`
 */
export async function issueGrant(issuer: Issuer, req: GrantRequest): Promise<IssuedGrant> {
  const { reg, settings } = issuer;
  const now = req.now ?? Date.now();
  const name = parseGrantName(req.name);
  const reason = grantReason(req.reason);
  const cap = Math.min(settings.maxGrantTtlMs, settings.maxTokenTtlMs);
  if (req.ttlMs > cap) throw new UsageError(`${req.ttlGiven ?? `grant lifetime ${formatDuration(req.ttlMs)}`} is above the cap of ${formatDuration(cap)} on grant lifetimes`, 'ERR_TTL_TOO_LONG');
  const within = req.within === undefined ? null : parseDeviceId(req.within);
  const acl = { pub: grantPatterns(req.publish, '--pub', within), sub: grantPatterns(req.subscribe, '--sub', within) };
  if (acl.pub.length === 0 && acl.sub.length === 0) throw new UsageError('a grant needs at least one --pub or --sub pattern', 'ERR_GRANT_INVALID');
  if (within !== null) await checkWithin(reg, within, acl);
  await refuseLive(reg, name, now);

  const principal = grantPrincipal(name);
  const minted = await mintToken(issuer.keyring, settings, { sub: principal, acl, ttlMs: req.ttlMs, now, ...(reason !== null && { reason }) });
  const bytes = Buffer.byteLength(minted.token);
  if (req.maxTokenBytes !== undefined && bytes > req.maxTokenBytes) {
    throw new UsageError(`the grant's token would be ${bytes} bytes, over the broker's ${req.maxTokenBytes}-byte password limit: grant fewer or shorter patterns, or a shorter --reason`, 'ERR_GRANT_INVALID');
  }
  const grant: Grant = {
    jti: minted.jti, name, publish: acl.pub, subscribe: acl.sub, reason, within, kid: minted.kid,
    issuedAt: minted.issuedAt, expiresAt: minted.expiresAt, revokedAt: null,
  };
  await reg.transaction(async (tx) => {
    await refuseLive(tx, name, now); // again in the transaction: two operators granting one name at once
    await tx.grants.record(grant);
    await tx.audit.append(req.actor ?? 'cli', 'grant.issue', principal, {
      grant: name, reason, within, publish: acl.pub, subscribe: acl.sub, jti: grant.jti, expiresAt: grant.expiresAt,
    }, now);
  });
  return { grant, token: minted.token };
}

/**
 * `credbroker revoke --grant NAME`: revokes the live grant of that name. The
 * change feed carries it to the broker, which closes its session within a
 * second. Fsynced before it returns, as every revocation.
 * @returns the grant revoked, or `changed: false` when the last grant of that name was already revoked or expired
 * @throws RegistryError `ERR_GRANT_NOT_FOUND`
 */
export function revokeGrant(reg: Stores, rawName: string, opts: { why?: string; actor?: Actor; now?: number } = {}): Promise<{ grant: Grant; changed: boolean }> {
  const name = parseGrantName(rawName);
  const now = opts.now ?? Date.now();
  return reg.transaction(async (tx) => {
    const [revoked] = await tx.grants.revokeLive(name, now);
    if (!revoked) {
      const last = await tx.grants.latestOf(name);
      if (!last) throw new RegistryError('ERR_GRANT_NOT_FOUND', `no grant named "${name}" (see: credbroker grants)`);
      return { grant: last, changed: false };
    }
    const principal = grantPrincipal(name);
    await tx.changes.append('grant_revoked', principal, revoked.jti, now);
    await tx.audit.append(opts.actor ?? 'cli', 'grant.revoke', principal, { grant: name, reason: revoked.reason, why: opts.why ?? null, jti: revoked.jti }, now);
    return { grant: revoked, changed: true };
  }, { durable: true });
}

function grantReason(text: string | undefined): string | null {
  if (text === undefined) return null;
  const reason = text.trim();
  if (!reason || reason.length > MAX_GRANT_REASON || /[\x00-\x1f\x7f]/.test(reason)) {
    throw new UsageError(`--reason must be one line of 1-${MAX_GRANT_REASON} characters (it travels in the token: no secrets)`, 'ERR_GRANT_INVALID');
  }
  return reason;
}

/** Checks and `{device}`-expands one side's patterns (duplicates dropped). */
function grantPatterns(patterns: readonly string[], flag: string, within: string | null): string[] {
  const out: string[] = [];
  for (const raw of patterns) {
    const bad = (why: string): never => { throw new UsageError(`${flag} ${describe(raw)} ${why}`, 'ERR_GRANT_INVALID'); };
    // First, to name a broker topic as such; `{device}` cannot make one (no device id holds a `$`).
    const why = ungrantable(raw);
    if (why) bad(why);
    try {
      validatePattern(raw);
    } catch (err) {
      if (err instanceof AclPatternError) bad(`is refused: ${err.message}`);
      throw err;
    }
    if (raw.includes('{device}') && within === null) bad('uses {device}, which only means something with --within DEVICE');
    const pattern = within === null ? raw : substituteDevice(raw, within);
    if (!out.includes(pattern)) out.push(pattern);
  }
  return out;
}

/** The device's own ACL (its profile, `{device}` substituted) must cover every pattern. */
async function checkWithin(reg: Stores, id: ReturnType<typeof parseDeviceId>, acl: AclRules): Promise<void> {
  const device = await reg.devices.require(id);
  if (device.status === 'revoked') throw new RegistryError('ERR_DEVICE_REVOKED', `device "${id}" is revoked: a grant --within it is refused`);
  const profile = await reg.profiles.require(device.profile);
  const own = { pub: profile.publish.map((p) => substituteDevice(p, id)), sub: profile.subscribe.map((p) => substituteDevice(p, id)) };
  const outside = firstOutside(own, acl);
  if (!outside) return;
  const [flag, side, mine] = outside.side === 'pub' ? ['--pub', 'publish', own.pub] : ['--sub', 'subscribe', own.sub];
  throw new UsageError(
    `${flag} ${describe(outside.pattern)} is not within device ${id}'s ACL (${side}: ${mine.join(' ') || 'nothing'}): a grant --within a device may only narrow it`,
    'ERR_GRANT_INVALID',
  );
}

async function refuseLive(reg: Stores, name: GrantName, now: number): Promise<void> {
  const live = await reg.grants.liveOf(name, now);
  if (live) {
    throw new RegistryError('ERR_GRANT_EXISTS', `grant "${name}" is live until ${new Date(live.expiresAt).toISOString()}: revoke it first (credbroker revoke --grant ${name}) or choose another name`);
  }
}
