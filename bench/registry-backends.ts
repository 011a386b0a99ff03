/**
 * 10. The registry engines side by side (issue 14), on a PostgreSQL cluster of the
 * bench's own (bench/lib/postgres-cluster.ts: loopback, fsync off — the SQLite
 * registries sit in a temp folder, so neither waits on a disk flush):
 *   a. factory batches: 10,000 devices with their credentials files through
 *      `provisionDevices`, into a new SQLite file and into a new PostgreSQL
 *      database, runs alternating;
 *   b. `credbroker registry copy` of that 10,000-device registry SQLite →
 *      PostgreSQL → SQLite (two CLI processes, timed whole): counts equal both ways,
 *      and a token minted before the copies verifies after them;
 *   c. revocation latency through LISTEN/NOTIFY: a broker on PostgreSQL, `credbroker
 *      revoke` in another process (bench 6's measurement, on the other engine);
 *   d. CONNECT rate with the broker on PostgreSQL against the same broker on SQLite,
 *      paired runs of alternating order (a CONNECT with a token reads no database).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureConnects } from './connect-rate.js';
import { startBrokerProc } from './lib/broker-proc.js';
import { createFixture, type Fixture } from './lib/fixture.js';
import { startPostgres, type PgCluster } from './lib/postgres-cluster.js';
import { median, now, pairedRatio } from './lib/stats.js';
import type { Targets } from './lib/targets.js';
import { benchRevocation, type RevocationResult } from './revocation-latency.js';
import { openIssuer, provisionDevices } from '../provisioning/index.js';
import { registryVerifyOptions, verifyAccessToken } from '../tokens/index.js';

export interface BackendsResult {
  readonly provision: { readonly devices: number; readonly sqlite: number[]; readonly postgres: number[]; readonly sqliteRate: number; readonly postgresRate: number };
  readonly copy: {
    readonly devices: number; readonly toPostgresS: number; readonly backToSqliteS: number;
    readonly countsEqual: boolean; readonly tokenVerifies: boolean; readonly counts: Record<string, unknown>;
  };
  readonly revocation: RevocationResult;
  readonly connect: { readonly n: number; readonly inflight: number; readonly sqlite: number[]; readonly postgres: number[]; readonly ratio: number };
}

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const BROKER_URL = 'mqtt://127.0.0.1:1883';

function cli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.CREDBROKER_DB;
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** One factory batch of `devices` into a new registry at `target`; devices/s. */
export async function provisionInto(target: string, outDir: string, devices: number): Promise<number> {
  const issuer = await openIssuer(target); // the registry and its signing key exist before the clock starts, as on a factory line
  try {
    const rows = Array.from({ length: devices }, (_, k) => ({ line: k + 2, id: `fab-${String(k).padStart(6, '0')}` }));
    const started = now();
    const r = await provisionDevices(issuer, rows, { profile: 'sensor', outDir, brokerUrl: BROKER_URL });
    if (r.provisioned.length !== devices) throw new Error(`provisioned ${r.provisioned.length} of ${devices} into ${target}`);
    return devices / ((now() - started) / 1000);
  } finally {
    await issuer.reg.close();
  }
}

/** Whether `token` verifies against the registry at `target`, through the broker's own verifier. */
async function verifiesIn(target: string, token: string): Promise<boolean> {
  const issuer = await openIssuer(target);
  try {
    verifyAccessToken(token, issuer.keyring.verifyKeys, registryVerifyOptions(issuer.settings));
    return true;
  } catch {
    return false;
  } finally {
    await issuer.reg.close();
  }
}

async function benchCopy(pg: PgCluster, from: string, dir: string, token: string, devices: number): Promise<BackendsResult['copy']> {
  const there = await pg.newDatabase('bench_copy');
  const back = join(dir, 'back.db');
  const t0 = now();
  const a = await cli(['registry', 'copy', '--from', from, '--to', there, '--json']);
  const t1 = now();
  if (a.code !== 0) throw new Error(`registry copy to PostgreSQL failed: ${a.stderr.trim()}`);
  const b = await cli(['registry', 'copy', '--from', there, '--to', back, '--json']);
  const t2 = now();
  if (b.code !== 0) throw new Error(`registry copy back to SQLite failed: ${b.stderr.trim()}`);
  const strip = (text: string) => {
    const { from: _f, to: _t, auditEvents: _a, ...rest } = JSON.parse(text) as Record<string, unknown>;
    return rest;
  };
  const counts = strip(a.stdout);
  return {
    devices, toPostgresS: (t1 - t0) / 1000, backToSqliteS: (t2 - t1) / 1000, counts,
    countsEqual: JSON.stringify(counts) === JSON.stringify(strip(b.stdout)) && counts.devices === devices,
    tokenVerifies: (await verifiesIn(there, token)) && (await verifiesIn(back, token)),
  };
}

export async function benchRegistryBackends(t: Targets, opts: { runs?: number; devices?: number; log?: (m: string) => void } = {}): Promise<BackendsResult> {
  const runs = opts.runs ?? 3;
  const devices = opts.devices ?? Number(process.env.BENCH_PROVISION_DEVICES ?? 10_000);
  const log = opts.log ?? (() => {});
  const pg = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-bench-backends-'));
  let pgFx: Fixture | null = null;
  try {
    log(`10a. factory batches of ${devices.toLocaleString('en-US')} devices, SQLite and PostgreSQL alternating (${runs} runs each)`);
    const rates = { sqlite: [] as number[], postgres: [] as number[] };
    let firstSqlite = '';
    for (let r = 0; r < runs; r++) {
      for (const engine of r % 2 === 0 ? ['sqlite', 'postgres'] as const : ['postgres', 'sqlite'] as const) {
        const target = engine === 'sqlite' ? join(dir, `prov-${r}.db`) : await pg.newDatabase(`bench_prov_${r}`);
        rates[engine].push(await provisionInto(target, join(dir, `creds-${engine}-${r}`), devices));
        if (engine === 'sqlite' && !firstSqlite) firstSqlite = target;
      }
    }

    log('10b. registry copy SQLite → PostgreSQL → SQLite of that registry');
    const token = (JSON.parse(readFileSync(join(dir, 'creds-sqlite-0', 'fab-000042.json'), 'utf8')) as { accessToken: string }).accessToken;
    const copy = await benchCopy(pg, firstSqlite, dir, token, devices);

    log('10c. revocation latency, broker on PostgreSQL (LISTEN/NOTIFY), revoke from another process');
    pgFx = await createFixture({ devices: t.fx.devices.length, revocable: 100 * runs, db: await pg.newDatabase('bench_broker') });
    const revocation = await benchRevocation({ ...t, fx: pgFx }, { devices: 100, runs });

    log('10d. CONNECT rate, broker on PostgreSQL vs on SQLite (paired, alternating)');
    const n = Math.min(3000, t.fx.connects.length, pgFx.connects.length);
    const inflight = 200;
    const connect = { sqlite: [] as number[], postgres: [] as number[] };
    for (let r = 0; r < runs; r++) {
      for (const [engine, fx] of r % 2 === 0 ? [['sqlite', t.fx], ['postgres', pgFx]] as const : [['postgres', pgFx], ['sqlite', t.fx]] as const) {
        const b = await startBrokerProc('credbroker', { db: fx.db });
        try {
          connect[engine].push((await measureConnects(b, fx.connects.slice(0, n), fx.connects.slice(n - 300, n), inflight)).rate);
        } finally {
          await b.close();
        }
      }
    }
    return {
      provision: { devices, ...rates, sqliteRate: median(rates.sqlite), postgresRate: median(rates.postgres) },
      copy,
      revocation,
      connect: { n, inflight, ...connect, ratio: pairedRatio(connect.postgres, connect.sqlite) },
    };
  } finally {
    pgFx?.close();
    rmSync(dir, { recursive: true, force: true });
    pg.destroy();
  }
}
