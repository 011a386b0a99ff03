import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { makeDirs } from '../util/make-dirs.js';
import { dirname, resolve } from 'node:path';
import { BatchError, CredbrokerError, UsageError, type BatchProblem } from '../errors/index.js';
import { isCredbrokerError } from '../errors/index.js';
import { parseDeviceId, type DeviceId, type Profile } from '../registry/index.js';
import { checkTtl, hashRefreshCredential, parseRefreshCredential } from '../tokens/index.js';
import { formatDuration } from '../util/duration.js';
import type { BatchRow } from './batch-file.js';
import { mintCredentialSet, provisionedRecord, type CredentialSet, type DeviceCredentials, type IssueOptions } from './credentials.js';
import {
  credentialsFileJti, credentialsFilePath, listCredentialsDir, readCredentialsFile, removePendingFile,
} from './credentials-file.js';
import { fileStage, type FileStage } from './file-stage.js';
import type { Issuer } from './issuer.js';

export interface ProvisionOptions extends IssueOptions {
  /** Profile for rows that name none. */
  readonly profile?: string;
  /** Folder for the credentials files; without it nothing is written to disk. */
  readonly outDir?: string;
  /** Provision the valid rows of a batch with bad rows (reporting the bad ones). */
  readonly skipInvalid?: boolean;
  /** Devices per transaction (default 1000). */
  readonly chunkSize?: number;
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Stops the run between chunks (Ctrl-C): what has committed stays, with its
   * files in place, and the result says `interrupted`; running the same batch
   * again provisions the rest.
   */
  readonly signal?: AbortSignal;
  /** Marks the devices as simulation devices (`credbroker sim`: removed when its run ends). */
  readonly simulation?: boolean;
  /**
   * Fault-injection hook for crash tests: runs after a chunk's registry commit and
   * before its credentials files are renamed into place (throw to simulate a crash there).
   */
  readonly afterChunkCommit?: (ids: readonly DeviceId[]) => void;
}

export interface ProvisionResult {
  readonly provisioned: DeviceCredentials[];
  /** Already in the registry: nothing minted again (includes `recovered` and `missingFiles`). */
  readonly skipped: DeviceId[];
  readonly invalid: BatchProblem[];
  /**
   * Already provisioned by a run that crashed after its registry commit but before
   * renaming the device's credentials file into place: the pending file (whose token
   * the registry holds) has now been renamed into place.
   */
  readonly recovered: DeviceId[];
  /** Already provisioned, but `outDir` holds no credentials file for them (written elsewhere, or lost). */
  readonly missingFiles: DeviceId[];
  /** Stopped by `signal` before the end: `remaining` devices of the batch were not provisioned. */
  readonly interrupted: boolean;
  readonly remaining: number;
}

interface Planned { readonly id: DeviceId; readonly profile: Profile }

const LOCK_NAME = '.credbroker-provision.lock';
/** Folders this process is provisioning into (a lock file naming our own pid may be a killed run's whose pid we reuse). */
const lockedHere = new Set<string>();

/**
 * Provisions devices: validates every row first (nothing is written if a row is
 * bad, unless `skipInvalid`), then mints and stores them chunk by chunk.
 *
 * Crash safety (a run killed at any point, then run again with the same folder):
 * 1. each chunk's credentials are written as pending files (`<id>.json.<hex>.tmp`, 0600);
 * 2. the chunk's registry rows commit in one transaction;
 * 3. the pending files are renamed to `<id>.json`.
 * So `<id>.json` only ever holds credentials the registry has committed. A re-run
 * skips committed devices (a device is never minted twice), renames a committed
 * device's pending file into place if the crash fell between 2 and 3 (it checks
 * the file's jti against the registry), deletes pending files that never
 * committed, and mints the rest.
 *
 * Throughput: three stages run at once. Chunk i+1 is signed on libuv's thread
 * pool, chunk i's files are written on the file stage (a thread of its own for a
 * large batch: file-stage.ts), and the main thread stores chunk i-1's registry rows.
 */
export async function provisionDevices(issuer: Issuer, rows: readonly BatchRow[], opts: ProvisionOptions): Promise<ProvisionResult> {
  const { planned, invalid } = await plan(issuer, rows, opts.profile);
  if (invalid.length && !opts.skipInvalid) throw new BatchError(invalid);
  for (const p of new Set(planned.map((x) => x.profile))) {
    const ttl = opts.ttlMs ?? p.tokenTtlMs;
    checkTtl(ttl, issuer.settings);
    const credentialTtl = opts.credentialTtlMs ?? issuer.settings.credentialTtlMs;
    if (credentialTtl < ttl) {
      throw new UsageError(`credential lifetime ${formatDuration(credentialTtl)} is shorter than the access token lifetime ${formatDuration(ttl)}`, 'ERR_INVALID_DURATION');
    }
  }

  const { reg } = issuer;
  const outDir = opts.outDir;
  const releaseLock = outDir ? lockOutDir(outDir) : () => {};
  try {
    const existing = await reg.devices.existing(planned.map((p) => p.id));
    await refuseChanges(issuer, planned.filter((p) => existing.has(p.id)));
    const skipped: DeviceId[] = planned.filter((p) => existing.has(p.id)).map((p) => p.id);
    const recovered: DeviceId[] = [];
    const missingFiles: DeviceId[] = [];
    if (outDir) await recoverFiles(issuer, outDir, planned, existing, recovered, missingFiles);

    const todo = planned.filter((p) => !existing.has(p.id));
    const provisioned: DeviceCredentials[] = [];
    const chunkSize = Math.max(1, opts.chunkSize ?? 1000);
    const mintChunk = (chunk: readonly Planned[]) => {
      const now = Date.now();
      const p = Promise.all(chunk.map((x) => mintCredentialSet(issuer, x.id, x.profile, { ...opts, now }))).then((sets) => ({ sets, now }));
      p.catch(() => {}); // awaited below; this only keeps an abandoned look-ahead from being an unhandled rejection
      return p;
    };
    const files = outDir ? fileStage(todo.length) : null;
    const renames: Promise<unknown>[] = [];
    /** A chunk signed, its pending files being written, not yet stored. */
    let held: Signed | null = null;
    const store = async (chunk: Signed) => {
      const stored = await storeChunk(issuer, chunk, files, renames, opts.afterChunkCommit, opts.simulation ?? false);
      for (const s of stored.committed) provisioned.push(s.file);
      skipped.push(...stored.raced);
      opts.onProgress?.(chunk.end, todo.length);
    };
    opts.onProgress?.(0, todo.length);
    // Pipeline: chunk i+1 is signed on libuv's pool and chunk i's files written on the file stage while the main thread stores chunk i-1.
    let next = todo.length ? mintChunk(todo.slice(0, chunkSize)) : null;
    let stoppedAt: number | null = null;
    try {
      for (let i = 0; i < todo.length; i += chunkSize) {
        const { sets, now } = await next!;
        if (opts.signal?.aborted) { stoppedAt = i; break; } // the signed chunk is dropped: it never existed
        next = i + chunkSize < todo.length ? mintChunk(todo.slice(i + chunkSize, i + 2 * chunkSize)) : null;
        const chunk: Signed = { sets, now, end: Math.min(i + chunkSize, todo.length), pending: pendingFiles(files, outDir, sets) };
        const before = held;
        held = chunk;
        if (before) await store(before);
      }
      const last = held;
      held = null;
      if (last) await store(last);
      await Promise.all(renames);
    } finally {
      // A chunk whose rows never committed: its credentials never existed.
      if (held && files) await held.pending.then((paths) => files.run({ op: 'remove', paths }), () => {});
      await files?.close();
    }
    if (provisioned.length > 0 || skipped.length > 0) {
      await reg.audit.append('cli', 'batch.provision', null, {
        provisioned: provisioned.length, skipped: skipped.length, invalid: invalid.length, recovered: recovered.length,
        ...(stoppedAt === null ? {} : { interrupted: true }),
      });
    }
    const remaining = stoppedAt === null ? 0 : todo.length - stoppedAt;
    return { provisioned, skipped, invalid, recovered, missingFiles, interrupted: stoppedAt !== null, remaining };
  } finally {
    releaseLock();
  }
}

interface Signed {
  readonly sets: readonly CredentialSet[];
  readonly now: number;
  /** Where the batch stands once this chunk is stored (for onProgress). */
  readonly end: number;
  /** The chunk's pending credentials files, in the order of `sets` (none without an --out folder). */
  readonly pending: Promise<string[]>;
}

function pendingFiles(files: FileStage | null, outDir: string | undefined, sets: readonly CredentialSet[]): Promise<string[]> {
  if (!files || !outDir) return Promise.resolve([]);
  const p = files.run({ op: 'write', dir: outDir, files: sets.map((s) => s.file) });
  p.catch(() => {}); // awaited by storeChunk, or on the way out
  return p;
}

/**
 * Stores one chunk: once its pending files are written, one registry transaction,
 * then renames (queued on the file stage: `renames`). A device that another process
 * registered meanwhile is left alone (reported as skipped).
 */
async function storeChunk(
  issuer: Issuer, chunk: Signed, files: FileStage | null, renames: Promise<unknown>[],
  afterCommit: ((ids: readonly DeviceId[]) => void) | undefined, simulation: boolean,
): Promise<{ committed: CredentialSet[]; raced: DeviceId[] }> {
  const { sets, now } = chunk;
  const pending = await chunk.pending;
  let committedFlags: boolean[];
  try {
    committedFlags = await issuer.reg.transaction(async (tx) => {
      const raced = await tx.devices.existing(sets.map((s) => s.deviceId));
      await tx.devices.provision(sets.filter((s) => !raced.has(s.deviceId)).map((s) => provisionedRecord(s, simulation)), now);
      return sets.map((s) => !raced.has(s.deviceId));
    });
  } catch (err) {
    await files?.run({ op: 'remove', paths: pending }); // nothing committed: these credentials never existed
    throw err;
  }
  const committed = sets.filter((_, k) => committedFlags[k]);
  afterCommit?.(committed.map((s) => s.deviceId));
  const raced = sets.filter((_, k) => !committedFlags[k]).map((s) => s.deviceId);
  if (files && pending.length) {
    const moves = pending.flatMap((p, k) => (committedFlags[k] ? [[p, credentialsFilePath(dirname(p), sets[k]!.deviceId)] as const] : []));
    const done = Promise.all([
      files.run({ op: 'rename', moves }),
      files.run({ op: 'remove', paths: pending.filter((_, k) => !committedFlags[k]) }),
    ]);
    done.catch(() => {}); // awaited at the end of the batch
    renames.push(done);
  }
  return { committed, raced };
}

/**
 * Before minting: for each already-registered device without `<id>.json`, rename
 * into place the pending file whose token the registry recorded for it (a crash
 * between commit and rename); then delete every other pending file of the batch's
 * devices (credentials that never committed, so never valid).
 */
async function recoverFiles(
  issuer: Issuer, outDir: string, planned: readonly Planned[], existing: ReadonlySet<string>,
  recovered: DeviceId[], missingFiles: DeviceId[],
): Promise<void> {
  const listing = listCredentialsDir(outDir);
  for (const { id } of planned) {
    const candidates = listing.pending.get(id) ?? [];
    let kept: string | undefined;
    if (existing.has(id) && !listing.final.has(id)) {
      for (const c of candidates) if (!kept && await recordedFor(issuer, c, id)) kept = c;
      if (kept) {
        renameSync(kept, credentialsFilePath(outDir, id));
        recovered.push(id);
      } else {
        missingFiles.push(id);
      }
    }
    for (const c of candidates) if (c !== kept) removePendingFile(c);
  }
}

/**
 * Whether the registry holds this pending file's credentials for `id`: by its
 * refresh credential (a record kept while the device lives), else by its access
 * token's jti (a token record is pruned once the token has expired).
 */
async function recordedFor(issuer: Issuer, path: string, id: DeviceId): Promise<boolean> {
  let hash: string | null = null;
  try {
    hash = hashRefreshCredential(parseRefreshCredential(readCredentialsFile(path).refreshCredential));
  } catch {
    // unreadable or not a refresh credential: the jti may still tell
  }
  if (hash !== null && (await issuer.reg.refresh.find(hash))?.deviceId === id) return true;
  const jti = credentialsFileJti(path);
  return jti !== undefined && (await issuer.reg.tokens.get(jti))?.deviceId === id;
}

/**
 * One provisioning run per credentials folder at a time: a second run would delete
 * the first one's pending files. A lock left by a killed run (its pid is gone) is taken over.
 */
function lockOutDir(outDir: string): () => void {
  makeDirs(outDir);
  const lock = resolve(outDir, LOCK_NAME);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      lockedHere.add(lock);
      return () => {
        lockedHere.delete(lock);
        rmSync(lock, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(readFileSyncSafe(lock), 10);
      const held = pid === process.pid ? lockedHere.has(lock) : Number.isInteger(pid) && pid > 0 && isAlive(pid);
      if (held) {
        throw new CredbrokerError('ERR_USAGE', `another provisioning run (pid ${pid}) is writing to ${outDir}; wait for it to finish (or delete ${lock} if that process is gone)`);
      }
      rmSync(lock, { force: true }); // stale: its process is gone
    }
  }
  throw new CredbrokerError('ERR_USAGE', `cannot lock ${outDir} for provisioning (${lock} keeps reappearing)`);
}

function readFileSyncSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Checks every row (id, duplicate, profile) before anything is written. */
/**
 * A device that exists is skipped (a batch run again resumes), but only when it is
 * what the row asks for: a revoked device, or one in another profile, would
 * otherwise be reported as "skipped (already provisioned)" with exit 0.
 * @throws RegistryError `ERR_DEVICE_REVOKED` | `ERR_DEVICE_EXISTS`
 */
async function refuseChanges(issuer: Issuer, existing: readonly Planned[]): Promise<void> {
  const revoked: DeviceId[] = [];
  const moved: { id: DeviceId; from: string; to: string }[] = [];
  for (let i = 0; i < existing.length; i += 500) {
    const chunk = existing.slice(i, i + 500);
    const devices = await Promise.all(chunk.map((p) => issuer.reg.devices.get(p.id)));
    chunk.forEach((p, k) => {
      const d = devices[k];
      if (d?.status === 'revoked') revoked.push(p.id);
      else if (d && d.profile !== p.profile.name) moved.push({ id: p.id, from: d.profile, to: p.profile.name });
    });
  }
  const named = (ids: readonly string[]) => `${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ` (and ${ids.length - 5} more)` : ''}`;
  if (revoked.length) {
    const [one] = revoked;
    throw new CredbrokerError('ERR_DEVICE_REVOKED', revoked.length === 1
      ? `device ${one} is revoked: provision never re-issues a revoked device; re-enable it with "credbroker restore ${one}" (then "credbroker token ${one}")`
      : `devices ${named(revoked)} are revoked: provision never re-issues a revoked device; re-enable each with "credbroker restore ID" (then "credbroker token ID"); nothing was provisioned`);
  }
  if (moved.length) {
    const [m] = moved;
    throw new CredbrokerError('ERR_DEVICE_EXISTS', moved.length === 1
      ? `device ${m!.id} already exists in profile ${m!.from}, not ${m!.to}: provision never changes a device; move it with "credbroker devices move ${m!.id} --profile ${m!.to}"`
      : `devices ${named(moved.map((x) => x.id))} already exist in another profile than asked: provision never changes a device; move them with "credbroker devices move ID... --profile NAME"; nothing was provisioned`);
  }
}

async function plan(issuer: Issuer, rows: readonly BatchRow[], defaultProfile: string | undefined): Promise<{ planned: Planned[]; invalid: BatchProblem[] }> {
  if (rows.length === 0) throw new CredbrokerError('ERR_BATCH_INVALID', 'the batch has no device rows');
  const planned: Planned[] = [];
  const invalid: BatchProblem[] = [];
  const seen = new Map<string, number>();
  const profiles = new Map((await issuer.reg.profiles.list()).map((p) => [p.name as string, p]));
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
  return { planned, invalid };
}
