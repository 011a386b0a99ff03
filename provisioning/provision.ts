import { BatchError, CredbrokerError, type BatchProblem } from '../errors/index.js';
import { isCredbrokerError } from '../errors/index.js';
import { parseDeviceId, type DeviceId, type Profile } from '../registry/index.js';
import { checkTtl } from '../tokens/index.js';
import type { BatchRow } from './batch-file.js';
import { mintCredentialSet, storeCredentialSet, type DeviceCredentials, type IssueOptions } from './credentials.js';
import { writeCredentialsFile } from './credentials-file.js';
import type { Issuer } from './issuer.js';

export interface ProvisionOptions extends IssueOptions {
  /** Profile for rows that name none. */
  readonly profile?: string;
  /** Folder for the credentials files; without it nothing is written to disk. */
  readonly outDir?: string;
  /** Provision the valid rows of a batch with bad rows (reporting the bad ones). */
  readonly skipInvalid?: boolean;
  /** Devices per transaction. */
  readonly chunkSize?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface ProvisionResult {
  readonly provisioned: DeviceCredentials[];
  /** Already in the registry: nothing minted again. */
  readonly skipped: DeviceId[];
  readonly invalid: BatchProblem[];
}

interface Planned { readonly id: DeviceId; readonly profile: Profile }

/**
 * Provisions devices: validates every row first, then mints and stores them
 * chunk by chunk. Each chunk writes its credentials files (atomically) and then
 * commits its registry rows in one transaction, so after a crash a re-run finds
 * the committed devices, skips them, and re-mints only the rest (overwriting any
 * file whose registry rows never committed). A device is never minted twice.
 */
export async function provisionDevices(issuer: Issuer, rows: readonly BatchRow[], opts: ProvisionOptions): Promise<ProvisionResult> {
  const { planned, invalid } = plan(issuer, rows, opts.profile);
  if (invalid.length && !opts.skipInvalid) throw new BatchError(invalid);
  for (const p of new Set(planned.map((x) => x.profile))) checkTtl(opts.ttlMs ?? p.tokenTtlMs, issuer.settings);

  const existing = issuer.reg.devices.existing(planned.map((p) => p.id));
  const todo = planned.filter((p) => !existing.has(p.id));
  const provisioned: DeviceCredentials[] = [];
  const chunkSize = opts.chunkSize ?? 1000;
  opts.onProgress?.(0, todo.length);
  for (let i = 0; i < todo.length; i += chunkSize) {
    const now = Date.now();
    const chunk = todo.slice(i, i + chunkSize);
    const sets = await Promise.all(chunk.map((p) => mintCredentialSet(issuer, p.id, p.profile, { ...opts, now })));
    if (opts.outDir) for (const s of sets) writeCredentialsFile(opts.outDir, s.file);
    issuer.reg.write(() => {
      for (const s of sets) storeCredentialSet(issuer, s, now);
    });
    for (const s of sets) provisioned.push(s.file);
    opts.onProgress?.(Math.min(i + chunkSize, todo.length), todo.length);
  }
  if (provisioned.length > 0 || existing.size > 0) {
    issuer.reg.audit.append('cli', 'batch.provision', null, { provisioned: provisioned.length, skipped: existing.size, invalid: invalid.length });
  }
  return { provisioned, skipped: planned.filter((p) => existing.has(p.id)).map((p) => p.id), invalid };
}

/** Checks every row (id, duplicate, profile) before anything is written. */
function plan(issuer: Issuer, rows: readonly BatchRow[], defaultProfile: string | undefined): { planned: Planned[]; invalid: BatchProblem[] } {
  const planned: Planned[] = [];
  const invalid: BatchProblem[] = [];
  const seen = new Map<string, number>();
  const profiles = new Map(issuer.reg.profiles.list().map((p) => [p.name as string, p]));
  for (const row of rows) {
    const shownId = typeof row.id === 'string' ? row.id : undefined;
    const bad = (message: string) => invalid.push({ line: row.line, id: shownId, message });
    if (row.problem) { bad(row.problem); continue; }
    let id: DeviceId;
    try {
      id = parseDeviceId(row.id);
    } catch (err) {
      if (isCredbrokerError(err)) { bad(err.message); continue; }
      throw err;
    }
    const firstLine = seen.get(id);
    if (firstLine !== undefined) { bad(`duplicate device id "${id}" (first on line ${firstLine})`); continue; }
    seen.set(id, row.line);
    const profileName = typeof row.profile === 'string' && row.profile ? row.profile : defaultProfile;
    if (!profileName) { bad('no profile: give --profile or a profile column'); continue; }
    const profile = profiles.get(profileName);
    if (!profile) { bad(`unknown profile "${profileName}"`); continue; }
    planned.push({ id, profile });
  }
  if (rows.length === 0) throw new CredbrokerError('ERR_BATCH_INVALID', 'the batch has no device rows');
  return { planned, invalid };
}
