/**
 * `credbroker serve` as an operator runs it (the built CLI), for the cluster
 * bench: one process without a bus (today's broker), or a node of workers on a
 * Redis bus. Its CPU is read from /proc: the primary plus each worker.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrokerHandle, BrokerStats } from './broker-proc.js';
import { childPids, cpuUs, rssBytes } from './proc-stat.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const WEAKENED = fileURLToPath(new URL('./serve-weakened.js', import.meta.url));

export interface NodeOptions {
  readonly db: string;
  /** Where the config file goes. */
  readonly dir: string;
  /** null: one process, no bus. */
  readonly workers: number | null;
  readonly bus: string | null;
  /** Settings for the config file. */
  readonly config?: Record<string, unknown>;
  /** aedes' broadcast takeover on the bus (test-only weakening): the node runs from bench/lib/serve-weakened.ts. */
  readonly broadcastTakeover?: boolean;
  readonly tag: string;
}

export interface NodeHandle extends BrokerHandle {
  readonly httpPort: number;
  /** The primary and its workers (the one process without a bus). */
  pids(): number[];
}

/** The bench's fleet connects from 127.0.0.1: the per-address caps are set so that they do not bite (as in broker-proc.ts). */
const BENCH_CONFIG = {
  backlog: 4096, logLevel: 'warn', maxUnauthenticated: 100_000, maxUnauthenticatedPerAddress: 100_000,
  // Each fixture device connects once per measured run, a few runs back to back.
  deviceConnectBurst: 1000,
};

export async function startNodeProc(o: NodeOptions): Promise<NodeHandle> {
  const configFile = join(o.dir, `node-${o.tag}.json`);
  writeFileSync(configFile, JSON.stringify({ ...BENCH_CONFIG, ...o.config }));
  const args = [o.broadcastTakeover ? WEAKENED : CLI, 'serve', '--db', o.db, '--config', configFile, '--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0'];
  if (o.bus) args.push('--bus', o.bus, '--workers', String(o.workers ?? 1));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CREDBROKER_')));
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const ports = await new Promise<{ mqtt: number; http: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve (${o.tag}) did not start within 60 s: ${err.slice(-2000)}`)), 60_000);
    child.stderr!.on('data', (d: Buffer) => {
      if (err.length < 100_000) err += d;
      const m = /broker ready — mqtt (\d+), tls \S+, ws \S+, http (\d+)/.exec(err);
      if (m) { clearTimeout(timer); resolve({ mqtt: Number(m[1]), http: Number(m[2]) }); }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`serve (${o.tag}) exited (${code}): ${err.slice(-2000)}`)); });
  });
  const pids = () => [child.pid!, ...childPids(child.pid!)];
  return {
    kind: 'credbroker', port: ports.mqtt, httpPort: ports.http, pid: child.pid!, pids,
    async stats(): Promise<BrokerStats> {
      const all = pids();
      return { cpuUs: all.reduce((n, p) => n + cpuUs(p), 0), rss: all.reduce((n, p) => n + rssBytes(p), 0), heapUsed: null, clients: await connectedClients(ports.http) };
    },
    gc: async () => {},
    async close() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** `credbroker_connected_clients` from the node's /metrics (summed over its workers); null when it does not answer. */
async function connectedClients(httpPort: number): Promise<number | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    const m = /^credbroker_connected_clients(?:\{[^}]*\})? (\S+)$/m.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
