import { RegistryError, UsageError } from '../errors/index.js';
import { BULK_TABLES, type BulkTableName, type Registry, type Settings } from '../registry/index.js';

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
  /** Operators (password hashes) and their live API tokens (hashes). */
  readonly operators: number;
  readonly operatorTokens: number;
  readonly auditEvents: number;
}

export interface CopyOptions {
  readonly now?: number;
  /** Devices copied so far, of `total`. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** Rows per page read and written: a bounded buffer, a few statements per thousand rows. */
const PAGE = 5_000;

/**
 * Copies a whole registry into an empty one, engine to engine (SQLite file ⇄
 * PostgreSQL), table by table in bulk (`Registry.bulk`: each engine writes a page of rows in
 * a statement or a few, never a round trip per row): profiles, signing keys (the active one with its
 * private half, so tokens minted before the copy verify and renew after it),
 * devices with their state (revoked, restored cut-off, last seen), live token
 * records (revoked ones too), refresh credentials in every state (hashes only),
 * live grants (revoked ones too), claims (hashes only, with their allow-lists and
 * the devices provisioned through them), operators with their live API tokens
 * (hashes only) and the audit log in order. Expired token
 * and grant records are left behind (nothing accepts them), and so is the change
 * feed: its sequence numbers belong to one registry, and nodes started on the copy
 * load the revocations from the tables. The target is written in one durable
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

  return to.transaction(async (tx) => {
    const rows: Record<BulkTableName, number> = Object.fromEntries(Object.keys(BULK_TABLES).map((t) => [t, 0])) as Record<BulkTableName, number>;
    const revoked = { devices: 0, tokens: 0 };
    const statusAt = BULK_TABLES.devices.columns.indexOf('status');
    const revokedAt = BULK_TABLES.tokens.columns.indexOf('revoked_at');
    await tx.bulk.clear('profiles'); // the target's seeded defaults: the source's profiles replace them
    opts.onProgress?.(0, total);
    for (const table of Object.keys(BULK_TABLES) as BulkTableName[]) {
      for (let after: unknown = null; ;) {
        const page = await from.bulk.page(table, now, after, PAGE);
        await tx.bulk.write(table, page.rows);
        rows[table] += page.rows.length;
        if (table === 'devices') {
          for (const r of page.rows) if (r[statusAt] === 'revoked') revoked.devices++;
          opts.onProgress?.(rows.devices, total);
        }
        if (table === 'tokens') for (const r of page.rows) if (r[revokedAt] !== null) revoked.tokens++;
        if (page.next === null) break;
        after = page.next;
      }
    }
    const c: CopyCounts = {
      profiles: rows.profiles, keys: rows.signing_keys, devices: rows.devices, revokedDevices: revoked.devices, tokens: rows.tokens,
      revokedTokens: revoked.tokens, refreshCredentials: rows.refresh_credentials, grants: rows.grants, claims: rows.claims,
      operators: rows.operators, operatorTokens: rows.operator_tokens, auditEvents: rows.audit,
    };
    await tx.audit.append('cli', 'registry.copy', null, { from: from.location, ...c });
    return c;
  }, { durable: true });
}

