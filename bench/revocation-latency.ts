/**
 * 6. Revocation latency: D connected devices revoked by ONE revoke process
 * (`node dist/cli/main.js revoke ID... --db FILE` when the CLI is built, else a
 * process calling operations/revokeDevices). Latency = from that process's exit
 * (observed here) to each socket's close (observed here, same clock). A
 * negative figure means the broker closed the session before the revoking
 * process had exited (the commit precedes the exit).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startBrokerProc, type BrokerHandle } from './lib/broker-proc.js';
import { credsOf } from './lib/fixture.js';
import { RawClient, connectPacket } from './lib/raw-client.js';
import { median, now, percentile, sleep } from './lib/stats.js';
import type { Targets } from './lib/targets.js';

export interface RevocationRun { readonly p50: number; readonly p99: number; readonly max: number; readonly closed: number; readonly processMs: number; readonly p99FromSpawn: number }
export interface RevocationResult { readonly devices: number; readonly via: string; readonly runs: RevocationRun[]; readonly p50: number; readonly p99: number; readonly processMs: number; readonly p99FromSpawn: number }

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const FALLBACK = fileURLToPath(new URL('./lib/revoke-child.js', import.meta.url));

function runRevoke(db: string, ids: readonly string[], useCli: boolean): Promise<{ exitAt: number; code: number | null; startedAt: number; stderr: string }> {
  const args = useCli ? [CLI, 'revoke', ...ids, '--db', db] : [FALLBACK, db, ...ids];
  return new Promise((resolve) => {
    const startedAt = now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    child.once('exit', (code) => resolve({ exitAt: now(), code, startedAt, stderr }));
  });
}

/**
 * @param opts.start the broker to revoke on (default: one credbroker process)
 * @param opts.first the first of the fixture's revocable devices to use (each is revoked once per bench)
 */
export async function benchRevocation(t: Targets, opts: { devices?: number; runs?: number; start?: () => Promise<BrokerHandle>; first?: number } = {}): Promise<RevocationResult> {
  const d = opts.devices ?? 100;
  const runs = opts.runs ?? 3;
  const first = opts.first ?? 0;
  if (t.fx.revocable.length < first + d * runs) throw new Error('not enough revocable devices in the fixture');
  const b = await (opts.start ?? (() => startBrokerProc('credbroker', { db: t.fx.db })))();
  const out: RevocationRun[] = [];
  let useCli = existsSync(CLI);
  let cliProblem = '';
  try {
    for (let r = 0; r < runs; r++) {
      const devs = t.fx.revocable.slice(first + r * d, first + (r + 1) * d);
      const clients = await Promise.all(devs.map((x) => RawClient.connect(b.port, connectPacket(credsOf(x)))));
      await sleep(300);
      let rev = await runRevoke(t.fx.db, devs.map((x) => x.deviceId), useCli);
      if (rev.code !== 0 && useCli) {
        // The CLI is being worked on elsewhere: fall back to the library call rather than lose the figure.
        cliProblem = rev.stderr.trim().split('\n').find((l) => /Error/.test(l)) ?? `exit ${rev.code}`;
        useCli = false;
        rev = await runRevoke(t.fx.db, devs.map((x) => x.deviceId), false);
      }
      if (rev.code !== 0) throw new Error(`revoke process failed (${rev.code}): ${rev.stderr.trim()}`);
      const timeout = sleep(5000).then(() => NaN);
      const closes = await Promise.all(clients.map((c) => Promise.race([c.closed, timeout])));
      for (const c of clients) c.socket.destroy();
      const lat = closes.map((c) => c - rev.exitAt);
      const closed = lat.filter((x) => Number.isFinite(x));
      const worst = closed.length === lat.length ? lat : [...closed, ...Array(lat.length - closed.length).fill(Infinity)];
      out.push({ p50: percentile(worst, 50), p99: percentile(worst, 99), max: Math.max(...worst), closed: closed.length, processMs: rev.exitAt - rev.startedAt, p99FromSpawn: percentile(worst.map((x) => x + (rev.exitAt - rev.startedAt)), 99) });
    }
  } finally {
    await b.close();
  }
  return {
    devices: d,
    via: useCli ? 'dist/cli/main.js revoke' : `operations/revokeDevices child (${existsSync(CLI) ? `CLI failed: ${cliProblem}` : 'no dist/cli/main.js'})`,
    runs: out, p50: median(out.map((r) => r.p50)), p99: median(out.map((r) => r.p99)), processMs: median(out.map((r) => r.processMs)), p99FromSpawn: median(out.map((r) => r.p99FromSpawn)),
  };
}
