import { RegistryError, UsageError } from '../errors/index.js';
import type { DeviceId } from '../registry/ids.js';
import type { Registry, RegistryTx } from '../registry/interface.js';
import type { AuditEvent, Device, Settings } from '../registry/types.js';

/** What `registry copy` moved, table by table. */
export interface CopyCounts {
  readonly profiles: number;
  readonly keys: number;
  readonly devices: number;
  readonly revokedDevices: number;
  /** Token records not yet expired, revoked ones included (the broker refuses those). */
  readonly tokens: number;
  readonly revokedTokens: number;
  readonly refreshCredentials: number;
  /** Grant records not yet expired (revoked ones included). */
  readonly grants: number;
  /** Claims (with their allow-lists, state and the devices provisioned through them). */
  readonly claims: number;
  readonly auditEvents: number;
}

export interface CopyOptions {
  readonly now?: number;
  /** Devices copied so far, of `total`. */
  readonly onProgress?: (done: number, total: number) => void;
}

const PAGE = 1_000;

/**
 * Copies a whole registry into an empty one, engine to engine (SQLite file ⇄
 * PostgreSQL), through the registry interface only: profiles, signing keys (the
 * active one with its private half, so tokens minted before the copy verify and
 * renew after it), devices with their state (revoked, restored cut-off, last
 * seen), live token records (revoked ones too), refresh credentials in every
 * state (hashes only), live grants (revoked ones too), claims (hashes only, with
 * their allow-lists and the devices provisioned through them) and the audit log in order. Expired token records are
 * left behind (nothing accepts them), and so is the change feed: its sequence
 * numbers belong to one registry, and nodes started on the copy load the
 * revocations from the tables. The target is written in one durable
 * transaction: an interrupted copy leaves it empty.
 *
 * `to` must have been opened with `from`'s settings (issuer, audience, alg) as its
 * `init`: they are fixed when a registry is created.
 * @throws UsageError when `to` already holds devices or keys, or is `from`.
 */
export async function copyRegistry(from: Registry, to: Registry, opts: CopyOptions = {}): Promise<CopyCounts> {
  const now = opts.now ?? Date.now();
  if (from.location === to.location) throw new UsageError(`--from and --to are the same registry (${from.location})`);
  if ((await to.devices.list({ limit: 1 })).length > 0 || (await to.keys.all()).length > 0) {
    throw new UsageError(`${to.location} already holds a registry (devices or signing keys): copy into a new, empty one`);
  }
  const [fromSettings, toSettings] = [await from.settings.read(), await to.settings.read()];
  const differs = (Object.keys(fromSettings) as (keyof Settings)[]).filter((k) => fromSettings[k] !== toSettings[k]);
  if (differs.length) {
    throw new RegistryError('ERR_REGISTRY', `${to.location} was created with other settings (${differs.join(', ')}) than ${from.location}: copy into a new, empty one`);
  }
  const byStatus = await from.devices.countByStatus();
  const total = byStatus.active + byStatus.revoked;
  const audit = await allAudit(from);

  const counts = await to.transaction(async (tx) => {
    const c = { profiles: 0, keys: 0, devices: 0, revokedDevices: 0, tokens: 0, revokedTokens: 0, refreshCredentials: 0, grants: 0, claims: 0, auditEvents: 0 };
    const profiles = await from.profiles.list();
    for (const p of profiles) await tx.profiles.set(p, p.updatedAt);
    for (const p of await tx.profiles.list()) if (!profiles.some((q) => q.name === p.name)) await tx.profiles.delete(p.name);
    c.profiles = profiles.length;

    for (const k of await from.keys.all()) {
      await tx.keys.add(k, k.createdAt);
      if (k.status === 'retired') await tx.keys.retire(k.kid, k.verifyUntil ?? 0, k.retiredAt ?? k.createdAt);
      c.keys++;
    }

    opts.onProgress?.(0, total);
    for (let after: string | undefined; ;) {
      const page = await from.devices.list({ after, limit: PAGE });
      if (page.length === 0) break;
      const seen = new Map<DeviceId, number>();
      for (const d of page) {
        await copyDevice(tx, d);
        if (d.lastSeenAt !== null) seen.set(d.id, d.lastSeenAt);
        if (d.status === 'revoked') c.revokedDevices++;
        for (const tok of await from.tokens.liveFor(d.id, now)) {
          await tx.tokens.record(tok);
          c.tokens++;
        }
        // Oldest first, so that the target's insertion order (its tie-break) is the source's.
        for (const r of (await from.refresh.forDevice(d.id)).reverse()) {
          await tx.refresh.add(r.hash, d.id, r.issuedAt, r.expiresAt);
          if (r.state !== 'current' || r.usedAt !== null) await tx.refresh.setState(r.hash, r.state, r.usedAt);
          c.refreshCredentials++;
        }
      }
      await tx.devices.touchMany(seen);
      c.devices += page.length;
      after = page[page.length - 1]!.id;
      opts.onProgress?.(c.devices, total);
    }

    for (const { jti } of await from.tokens.revokedLive(now)) {
      const tok = await from.tokens.get(jti);
      if (!tok) continue;
      await tx.tokens.record(tok);
      await tx.tokens.revoke(tok.jti, tok.revokedAt ?? now);
      c.tokens++;
      c.revokedTokens++;
    }

    // Revoked grants first: revoking one by name must not reach a live grant of that name recorded later.
    for (const { jti } of await from.grants.revokedLive(now)) {
      const g = await from.grants.get(jti);
      if (!g) continue;
      await tx.grants.record(g);
      await tx.grants.revokeLive(g.name, g.revokedAt ?? now);
      c.grants++;
    }
    for (const g of await from.grants.list({ activeAt: now })) {
      await tx.grants.record(g);
      c.grants++;
    }

    for (const claim of await from.claims.list()) {
      await tx.claims.insert(claim, claim.hasAllowList ? await from.claims.allowed(claim.name) : null);
      if (claim.revokedAt !== null) await tx.claims.revoke(claim.name, claim.revokedReason ?? '', claim.revokedAt);
      for (const d of await from.claims.devices(claim.name, Number.MAX_SAFE_INTEGER)) await tx.claims.recordDevice(d.deviceId, d.claim, d.claimedAt, d.address);
      c.claims++;
    }

    for (let i = 0; i < audit.length; i += PAGE) {
      await tx.audit.appendMany(audit.slice(i, i + PAGE).map((e) => ({
        actor: e.actor as 'cli', action: e.action, deviceId: e.deviceId, details: e.details, at: e.at,
      })));
    }
    c.auditEvents = audit.length;
    await tx.audit.append('cli', 'registry.copy', null, { from: from.location, ...c });
    return c;
  }, { durable: true });
  return counts;
}

/**
 * A device row as the source holds it. The interface sets state only through
 * its transitions, so they are replayed: a restore's token cut-off by a revoke
 * and a restore at that second, then the revocation itself.
 */
async function copyDevice(tx: RegistryTx, d: Device): Promise<void> {
  await tx.devices.insert(d.id, d.profile, d.credentialExpiresAt, d.createdAt, d.simulation);
  if (d.tokensValidAfter > 0) {
    await tx.devices.revoke(d.id, 'copy', d.createdAt);
    await tx.devices.restore(d.id, d.tokensValidAfter * 1000);
  }
  if (d.status === 'revoked') await tx.devices.revoke(d.id, d.revokedReason ?? '', d.revokedAt ?? d.createdAt);
}

/** The whole audit log, oldest first. */
async function allAudit(reg: Registry): Promise<AuditEvent[]> {
  const pages: AuditEvent[][] = [];
  for (let before: number | undefined; ;) {
    const page = await reg.audit.query({ before, limit: 10_000 });
    if (page.length === 0) break;
    pages.push(page);
    before = page[page.length - 1]!.id;
  }
  return pages.flat().reverse();
}
