import type { Registry } from '../registry/index.js';

/** The audit rows a steady fleet writes most: one per renewal. They may be kept for less time than the rest. */
export const RENEWAL_AUDIT_ACTIONS: readonly string[] = ['token.renew', 'token.renew_refresh'];

/**
 * Change-feed rows are read by a running broker within one poll, and a broker that
 * starts loads revocations from the tables, not the feed: a day is plenty.
 */
export const CHANGES_KEEP_MS = 86_400_000;

/** Rows deleted per transaction: a CLI writer or a renewal waits at most one batch. */
export const PRUNE_BATCH = 2000;

/** Free pages given back per step (16 MiB at 4 KiB pages). */
const RECLAIM_PAGES = 4096;

export interface Retention {
  /**
   * How long after its expiry a token's record is kept: the verifier's leeway
   * (until then the token can still be accepted, so revocation by jti needs it).
   */
  readonly tokenGraceMs: number;
  /** Audit events older than this go (null: kept for good). */
  readonly auditMs: number | null;
  /** Renewal events (`RENEWAL_AUDIT_ACTIONS`) older than this go, when shorter than `auditMs`. */
  readonly renewalAuditMs: number | null;
}

export interface Pruned {
  readonly tokens: number;
  /** Grants expired longer ago than the audit retention (their audit rows are gone too); kept for good without one. */
  readonly grants: number;
  readonly audit: number;
  readonly changes: number;
  /** Pages given back to the file system. */
  readonly pages: number;
}

interface PruneOptions {
  readonly now?: number;
  readonly batch?: number;
  /** Runs between batches: the broker yields its event loop there. */
  readonly pause?: () => Promise<void>;
}

/**
 * Deletes what the registry no longer needs — token records past expiry and
 * grace, audit events and expired grants past retention, old change-feed rows — then gives the
 * freed pages back, so that the file's size levels off under a steady fleet.
 */
export async function pruneRegistry(reg: Registry, retention: Retention, opts: PruneOptions = {}): Promise<Pruned> {
  const now = opts.now ?? Date.now();
  const batch = opts.batch ?? PRUNE_BATCH;
  const { auditMs, renewalAuditMs } = retention;
  // Expired tokens of a family that is still live are kept as long as the renewal events that chain them.
  const familyBefore = Math.max(0, now - (renewalAuditMs ?? auditMs ?? now));
  const tokens = await drain((n) => reg.tokens.pruneExpired(now - retention.tokenGraceMs, n, familyBefore), batch, opts.pause);
  let audit = auditMs === null ? 0 : await drain((n) => reg.audit.prune(now - auditMs, n), batch, opts.pause);
  if (renewalAuditMs !== null && (auditMs === null || renewalAuditMs < auditMs)) {
    audit += await drain((n) => reg.audit.prune(now - renewalAuditMs, n, RENEWAL_AUDIT_ACTIONS), batch, opts.pause);
  }
  const grants = auditMs === null ? 0 : await drain((n) => reg.grants.pruneExpired(now - auditMs, n), batch, opts.pause);
  const changes = await drain((n) => reg.changes.prune(now - CHANGES_KEEP_MS, n), batch, opts.pause);
  return { tokens, grants, audit, changes, pages: await reclaim(reg, opts.pause) };
}

/**
 * `credbroker audit prune --older-than D`: deletes audit events older than
 * `before` (ms) and gives the space back.
 */
export async function pruneAudit(reg: Registry, before: number, opts: Omit<PruneOptions, 'now'> = {}): Promise<{ audit: number; pages: number }> {
  const audit = await drain((n) => reg.audit.prune(before, n), opts.batch ?? PRUNE_BATCH, opts.pause);
  return { audit, pages: await reclaim(reg, opts.pause) };
}

/** Each batch is its own statement (and transaction): a CLI writer or a renewal waits at most one batch. */
async function drain(step: (limit: number) => Promise<number>, batch: number, pause?: () => Promise<void>): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await step(batch);
    total += n;
    if (n < batch) return total;
    await pause?.();
  }
}

async function reclaim(reg: Registry, pause?: () => Promise<void>): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await reg.space.reclaim(RECLAIM_PAGES);
    total += n;
    if (n < RECLAIM_PAGES) return total;
    await pause?.();
  }
}
