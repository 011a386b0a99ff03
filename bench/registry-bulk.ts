/**
 * Provisioning and `registry copy` in bulk, each engine paired with a baseline of
 * the same run (medians of `runs`, alternating order), on the bench's own PostgreSQL
 * cluster (bench/lib/postgres-cluster.ts, loopback) and SQLite files on tmpfs
 * (/dev/shm where there is one), credentials files written beside them:
 *   a. factory batch into SQLite, against what the file system alone does with the
 *      same files (create 0600 + rename, nothing signed or stored);
 *   b. factory batch into PostgreSQL (pipelined bulk INSERTs), against SQLite;
 *   c. `copyRegistry` of that registry SQLite → PostgreSQL and PostgreSQL → SQLite,
 *      rows/s, against SQLite → SQLite.
 *
 *   BENCH_BULK_DEVICES=5000 (default) devices per batch and per copied registry.
 */
import { isEntryPoint } from '../util/entry-point.js';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres } from './lib/postgres-cluster.js';
import { provisionInto } from './registry-backends.js';
import { median, now } from './lib/stats.js';
import { copyRegistry, type CopyCounts } from '../operations/registry-copy.js';
import { openRegistry } from '../registry/index.js';

export interface BulkResult {
  readonly devices: number;
  readonly runs: number;
  /** devices/s per run */
  readonly provision: { readonly sqlite: number[]; readonly postgres: number[]; readonly filesOnly: number[] };
  /** rows/s per run (every row the copy wrote, audit included) */
  readonly copy: { readonly rows: number; readonly toPostgres: number[]; readonly toSqlite: number[]; readonly sqliteToSqlite: number[] };
}

/** The file system's share of a batch: the same number of 0600 files of a credentials file's size, created then renamed. */
function filesOnly(dir: string, devices: number): number {
  mkdirSync(dir);
  const body = `${JSON.stringify({ pad: 'x'.repeat(740) })}\n`;
  const started = now();
  for (let k = 0; k < devices; k++) {
    writeFileSync(join(dir, `f-${k}.json.0000abcd.tmp`), body, { mode: 0o600, flag: 'wx' });
    renameSync(join(dir, `f-${k}.json.0000abcd.tmp`), join(dir, `f-${k}.json`));
  }
  return devices / ((now() - started) / 1000);
}

const rowsOf = (c: CopyCounts) => c.profiles + c.keys + c.devices + c.tokens + c.refreshCredentials + c.grants + c.claims + c.auditEvents;

/** One copy into a new registry at `to`; rows/s and the counts. */
async function copyInto(from: string, to: string): Promise<{ rate: number; counts: CopyCounts }> {
  const src = await openRegistry(from, { readonly: true });
  try {
    const dst = await openRegistry(to, { init: await src.settings.read() });
    try {
      const started = now();
      const counts = await copyRegistry(src, dst);
      return { rate: rowsOf(counts) / ((now() - started) / 1000), counts };
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

export async function benchRegistryBulk(opts: { runs?: number; devices?: number; log?: (m: string) => void } = {}): Promise<BulkResult> {
  const runs = Math.max(5, opts.runs ?? 5);
  const devices = opts.devices ?? Number(process.env.BENCH_BULK_DEVICES ?? 5_000);
  const log = opts.log ?? (() => {});
  const pg = await startPostgres();
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'credbroker-bench-bulk-'));
  try {
    log(`11a/b. factory batches of ${devices.toLocaleString('en-US')} devices: files only, SQLite (tmpfs), PostgreSQL (bulk INSERTs), ${runs} runs, alternating`);
    const provision = { sqlite: [] as number[], postgres: [] as number[], filesOnly: [] as number[] };
    const sources = { sqlite: '', postgres: '' };
    for (let r = 0; r < runs; r++) {
      const order = r % 2 === 0 ? (['filesOnly', 'sqlite', 'postgres'] as const) : (['postgres', 'sqlite', 'filesOnly'] as const);
      for (const what of order) {
        if (what === 'filesOnly') { provision.filesOnly.push(filesOnly(join(dir, `files-${r}`), devices)); continue; }
        const target = what === 'sqlite' ? join(dir, `prov-${r}.db`) : await pg.newDatabase(`bulk_prov_${r}`);
        provision[what].push(await provisionInto(target, join(dir, `creds-${what}-${r}`), devices));
        sources[what] ||= target;
      }
      rmSync(join(dir, `files-${r}`), { recursive: true, force: true });
      for (const what of ['sqlite', 'postgres']) rmSync(join(dir, `creds-${what}-${r}`), { recursive: true, force: true });
    }

    log(`11c. registry copy of a ${devices.toLocaleString('en-US')}-device registry: SQLite → PostgreSQL, PostgreSQL → SQLite, SQLite → SQLite (${runs} runs each)`);
    const copy = { rows: 0, toPostgres: [] as number[], toSqlite: [] as number[], sqliteToSqlite: [] as number[] };
    for (let r = 0; r < runs; r++) {
      const a = await copyInto(sources.sqlite, await pg.newDatabase(`bulk_copy_${r}`));
      const b = await copyInto(sources.postgres, join(dir, `back-${r}.db`));
      const c = await copyInto(sources.sqlite, join(dir, `same-${r}.db`));
      if (a.counts.devices !== devices || b.counts.devices !== devices || c.counts.devices !== devices) throw new Error('a copy lost devices');
      copy.rows = rowsOf(a.counts);
      copy.toPostgres.push(a.rate);
      copy.toSqlite.push(b.rate);
      copy.sqliteToSqlite.push(c.rate);
    }
    return { devices, runs, provision, copy };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    pg.destroy();
  }
}

/** Medians for the table. */
export function bulkMedians(b: BulkResult) {
  return {
    sqlite: median(b.provision.sqlite), postgres: median(b.provision.postgres), filesOnly: median(b.provision.filesOnly),
    toPostgres: median(b.copy.toPostgres), toSqlite: median(b.copy.toSqlite), sqliteToSqlite: median(b.copy.sqliteToSqlite),
  };
}

if (isEntryPoint(import.meta.url)) {
  const b = await benchRegistryBulk({ log: (m) => process.stderr.write(`${m}\n`) });
  const m = bulkMedians(b);
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  console.log(`medians of ${b.runs} runs, ${n(b.devices)} devices:`);
  console.log(`  batch into SQLite (tmpfs)    ${n(m.sqlite)} devices/s   files alone ${n(m.filesOnly)}/s`);
  console.log(`  batch into PostgreSQL        ${n(m.postgres)} devices/s   ${(m.postgres / m.sqlite).toFixed(2)}× SQLite`);
  console.log(`  copy SQLite → PostgreSQL     ${n(m.toPostgres)} rows/s   ${(m.toPostgres / m.sqliteToSqlite).toFixed(2)}× SQLite → SQLite (${n(m.sqliteToSqlite)})`);
  console.log(`  copy PostgreSQL → SQLite     ${n(m.toSqlite)} rows/s   ${(m.toSqlite / m.sqliteToSqlite).toFixed(2)}×`);
  console.log(JSON.stringify(b));
}
