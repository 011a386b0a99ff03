/**
 * Provisioning throughput: 10,000 devices in one batch (a factory shift's worth),
 * credentials files included, through the library (`provisionDevices`) and through
 * the real CLI process (`credbroker provision --batch`, timed as a whole: process
 * start, module loading, CSV parsing, signing, files, registry).
 *
 *   node dist/bench/provision.js            # prints the figures
 *   BENCH_PROVISION_DEVICES=20000 node dist/bench/provision.js
 */
import { isEntryPoint } from '../util/entry-point.js';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { openIssuer, provisionDevices, readBatchFile } from '../provisioning/index.js';

export interface ProvisionBenchResult {
  /** Library path: devices per second for read CSV + validate + mint + write files + commit. */
  devicesPerSecond: number;
  /** Registry size after the library batch: main file + WAL (bytes). */
  registryBytes: number;
  devices: number;
  /** The same batch through `credbroker provision --batch`, the whole process timed. */
  cliDevicesPerSecond: number;
  cliSeconds: number;
  librarySeconds: number;
  /**
   * The file system's own ceiling, for reading the figures above: new 0600 files of
   * a credentials file's size created and renamed per second in the same temp
   * folder, with nothing else going on (no signing, no registry).
   */
  fileCreatesPerSecond: number;
}

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

const size = (path: string) => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

function run(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.CREDBROKER_DB;
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

export async function benchProvision(opts: { devices?: number } = {}): Promise<ProvisionBenchResult> {
  const devices = opts.devices ?? Number(process.env.BENCH_PROVISION_DEVICES ?? 10_000);
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-bench-provision-'));
  try {
    const csv = join(dir, 'batch.csv');
    writeFileSync(csv, `id\n${Array.from({ length: devices }, (_, k) => `bench-${String(k).padStart(6, '0')}`).join('\n')}\n`);

    // the file system's ceiling: create + rename N files like the credentials files
    const scratch = join(dir, 'scratch');
    mkdirSync(scratch);
    const body = `${JSON.stringify({ pad: 'x'.repeat(740) })}\n`;
    const fsStarted = performance.now();
    for (let k = 0; k < devices; k++) {
      writeFileSync(join(scratch, `f-${k}.json.0000abcd.tmp`), body, { mode: 0o600, flag: 'wx' });
      renameSync(join(scratch, `f-${k}.json.0000abcd.tmp`), join(scratch, `f-${k}.json`));
    }
    const fileCreatesPerSecond = devices / ((performance.now() - fsStarted) / 1000);

    // library: registry and signing key created before the clock starts
    const libDb = join(dir, 'lib', 'registry.db');
    const issuer = await openIssuer(libDb);
    let librarySeconds: number;
    let registryBytes: number;
    try {
      const started = performance.now();
      const result = await provisionDevices(issuer, readBatchFile(csv), { profile: 'sensor', outDir: join(dir, 'lib', 'creds'), brokerUrl: 'mqtt://localhost:1883' });
      librarySeconds = (performance.now() - started) / 1000;
      if (result.provisioned.length !== devices) throw new Error(`library provisioned ${result.provisioned.length} of ${devices}`);
      registryBytes = size(libDb) + size(`${libDb}-wal`);
    } finally {
      await issuer.reg.close();
    }

    // CLI: `init` untimed (the factory line's registry exists), then the whole provision command
    const cliDb = join(dir, 'cli', 'registry.db');
    const cliOut = join(dir, 'cli', 'creds');
    const init = await run(['init', '--db', cliDb]);
    if (init.code !== 0) throw new Error(`credbroker init failed: ${init.stderr.trim()}`);
    const started = performance.now();
    const prov = await run(['provision', '--batch', csv, '--profile', 'sensor', '--out', cliOut, '--db', cliDb]);
    const cliSeconds = (performance.now() - started) / 1000;
    if (prov.code !== 0) throw new Error(`credbroker provision failed: ${prov.stderr.trim()}`);
    const files = readdirSync(cliOut).length;
    if (files !== devices) throw new Error(`the CLI wrote ${files} credentials files for ${devices} devices`);

    return {
      devicesPerSecond: devices / librarySeconds,
      registryBytes,
      devices,
      cliDevicesPerSecond: devices / cliSeconds,
      cliSeconds,
      librarySeconds,
      fileCreatesPerSecond,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isEntryPoint(import.meta.url)) {
  const r = await benchProvision();
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  console.log(`provisioning ${n(r.devices)} devices in one batch (credentials files written, 0600):`);
  console.log(`  library  provisionDevices: ${r.librarySeconds.toFixed(2)} s  ${n(r.devicesPerSecond)} devices/s`);
  console.log(`  cli      credbroker provision --batch (whole process): ${r.cliSeconds.toFixed(2)} s  ${n(r.cliDevicesPerSecond)} devices/s`);
  console.log(`  registry size (db + wal): ${(r.registryBytes / 1048576).toFixed(1)} MiB (${n(r.registryBytes / r.devices)} bytes/device)`);
  console.log(`  for reference, this file system alone creates ${n(r.fileCreatesPerSecond)} such files/s (${tmpdir()})`);
}
