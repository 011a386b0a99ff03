// Shared helpers for the hostile-* tests: a seeded PRNG, raw MQTT sockets,
// metric reads, and child processes that run the compiled library from dist/.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { MqttClient, type IClientOptions } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import type { RunningBroker } from '../../broker/index.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
export const CLI = `${DIST}cli/main.js`;
export const hasCli = () => existsSync(CLI);
export const SOAK = process.env.CREDBROKER_SOAK === '1';
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** mulberry32: a tiny seeded PRNG, so a failing fuzz run can be replayed. */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  bool(p = 0.5): boolean { return this.next() < p; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  str(n: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789/+#$-_'): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

/** A CONNECT packet (MQTT 3.1.1) as bytes. */
export function connectPacket(o: { clientId: string; username?: string; password?: string | Buffer; keepalive?: number }): Buffer {
  return mqttPacket.generate({
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: o.keepalive ?? 30,
    clientId: o.clientId, username: o.username, password: typeof o.password === 'string' ? Buffer.from(o.password) : o.password,
  });
}

export interface RawResult {
  /** CONNACK return code, or null when the broker closed without one. */
  readonly code: number | null;
  readonly ms: number;
}

/**
 * Opens a raw TCP socket, writes `bytes`, waits for a CONNACK (or close, or
 * timeout) and closes. Never rejects.
 */
export function rawConnack(port: number, bytes: Buffer, opts: { host?: string; localAddress?: string; timeoutMs?: number } = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const sock = net.connect({ port, host: opts.host ?? '127.0.0.1', localAddress: opts.localAddress });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let settled = false;
    const done = (code: number | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ code, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => done(null), opts.timeoutMs ?? 10_000);
    parser.on('packet', (p) => { if (p.cmd === 'connack') done((p as { returnCode?: number }).returnCode ?? null); });
    parser.on('error', () => done(null));
    sock.on('data', (d) => parser.parse(d));
    sock.on('error', () => done(null));
    sock.on('close', () => done(null));
    sock.on('connect', () => sock.write(bytes));
  });
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Sum of `credbroker_auth_results_total` for a label match, read in process. */
export async function authCount(broker: RunningBroker, match: { result?: string; reason?: string }): Promise<number> {
  const m = await broker.context.metrics.authResults.get();
  return m.values
    .filter((v) => (!match.result || v.labels.result === match.result) && (!match.reason || v.labels.reason === match.reason))
    .reduce((a, v) => a + v.value, 0);
}

/** How many access tokens the broker has verified (signature work done). */
export async function verifyCount(broker: RunningBroker): Promise<number> {
  const m = await broker.context.metrics.verifySeconds.get();
  return m.values.find((v) => v.metricName === 'credbroker_token_verify_seconds_count')?.value ?? 0;
}

/** Reads one sample from the broker's Prometheus endpoint over HTTP. */
export async function scrape(httpPort: number, metric: string, labels: Record<string, string> = {}): Promise<number> {
  // Bounded: a broker out of file descriptors never answers.
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export interface ChildResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs ESM JavaScript in a child `node` (cwd = project root, so `./dist/...` imports work). */
export function runNode(code: string, opts: { args?: string[]; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<ChildResult> {
  return runProcess(process.execPath, ['--input-type=module', '-e', code, '--', ...(opts.args ?? [])], opts);
}

/** Runs the CLI (`node dist/cli/main.js ...`). */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<ChildResult> {
  return runProcess(process.execPath, [CLI, ...args], opts);
}

/** Runs any command (cwd = project root). */
export function runProcess(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string }): Promise<ChildResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
    child.on('error', (err) => { clearTimeout(timer); resolve({ code: null, signal: null, stdout, stderr: stderr + err.message }); }); // e.g. the command is not installed
    child.stdin.end(opts.input ?? '');
  });
}

export interface BrokerChild {
  readonly child: ChildProcess;
  readonly port: number;
  readonly httpPort: number;
  /** The WebSocket listener's port (null unless the config sets `wsPort`). */
  readonly wsPort: number | null;
  readonly output: () => string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts the compiled broker (dist/) in a child process on `db`, ephemeral
 * loopback ports; resolves once it prints its ports.
 */
export function spawnBrokerChild(db: string, config: Record<string, unknown> = {}, opts: { fdLimit?: number } = {}): Promise<BrokerChild> {
  const code = `
    import { startBroker, validateConfig, createLogger } from './dist/broker/index.js';
    const config = validateConfig({ db: process.argv[1], host: '127.0.0.1', mqttPort: 0, wsPort: null, httpPort: 0, logLevel: 'info', ...JSON.parse(process.argv[2]) });
    const broker = await startBroker(config, { logger: createLogger('info', process.stderr) });
    process.stdout.write(JSON.stringify({ port: broker.ports.mqtt, http: broker.ports.http, ws: broker.ports.ws }) + '\\n');
    process.on('SIGTERM', () => broker.close().then(() => process.exit(0)));
  `;
  const argv = [process.execPath, '--input-type=module', '-e', code, '--', db, JSON.stringify(config)];
  // `ulimit -n` in sh sets the soft and the hard open-files limit, so the broker cannot raise it back.
  const [cmd, ...args] = opts.fdLimit ? ['/bin/sh', '-c', `ulimit -n ${opts.fdLimit} && exec "$@"`, 'sh', ...argv] : argv;
  const child = spawn(cmd!, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (c, s) => r({ code: c, signal: s })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`broker child did not start: ${out}`)); }, 20_000);
    child.stderr!.on('data', (d) => (out += d));
    let line = '';
    child.stdout!.on('data', (d) => {
      out += d;
      line += d;
      const nl = line.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      const { port, http, ws } = JSON.parse(line.slice(0, nl)) as { port: number; http: number; ws: number | null };
      resolve({ child, port, httpPort: http, wsPort: ws, output: () => out, exited });
    });
    void exited.then(({ code: c, signal }) => { clearTimeout(timer); reject(new Error(`broker child exited (${c ?? signal}) before starting: ${out}`)); });
  });
}

/** Resident memory of another process, in MiB, from /proc (Linux; null elsewhere or once it is gone). */
export function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * MQTT.js client whose TCP socket is bound to `localAddress` (MQTT.js itself
 * ignores localAddress for mqtt:// URLs). Resolves with the CONNACK code like
 * helpers/broker.ts connect().
 */
export function connectFrom(port: number, localAddress: string, opts: IClientOptions): Promise<{ client: MqttClient | null; code: number }> {
  return new Promise((resolve) => {
    const client = new MqttClient(() => net.connect({ port, host: '127.0.0.1', localAddress }), {
      reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...opts,
    });
    client.once('connect', () => resolve({ client, code: 0 }));
    client.once('error', (err: Error & { code?: number }) => {
      client.end(true);
      resolve({ client: null, code: typeof err.code === 'number' ? err.code : -1 });
    });
    client.once('close', () => resolve({ client: null, code: -2 }));
  });
}

/**
 * Runs a login flood from a child process (so the attacker does not share the
 * broker's event loop): `attempts` raw CONNECTs cycling through `packets`,
 * `parallel` at a time, each awaiting its CONNACK, from `localAddress` (or several,
 * in turn). Returns counts by CONNACK code.
 */
export async function floodFromChild(port: number, packets: Buffer[], attempts: number, parallel: number, localAddress: string | string[] = '127.0.0.1'): Promise<{ codes: Record<string, number>; seconds: number; child: ChildResult }> {
  const code = `
    import net from 'node:net';
    import mqttPacket from 'mqtt-packet';
    let input = '';
    for await (const c of process.stdin) input += c;
    const { port, packets, attempts, parallel, localAddress } = JSON.parse(input);
    const bufs = packets.map((p) => Buffer.from(p, 'base64'));
    const codes = {};
    const addresses = [localAddress].flat();
    const one = (bytes, i) => new Promise((resolve) => {
      const sock = net.connect({ port, host: '127.0.0.1', localAddress: addresses[i % addresses.length] });
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      let done = false;
      const finish = (c) => { if (done) return; done = true; clearTimeout(timer); sock.destroy(); codes[c] = (codes[c] ?? 0) + 1; resolve(); };
      const timer = setTimeout(() => finish('timeout'), 10000);
      parser.on('packet', (p) => p.cmd === 'connack' && finish(String(p.returnCode)));
      parser.on('error', () => finish('parse_error'));
      sock.on('data', (d) => parser.parse(d));
      sock.on('error', () => finish('socket_error'));
      sock.on('close', () => finish('closed'));
      sock.on('connect', () => sock.write(bytes));
    });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: parallel }, async () => { while (next < attempts) { const i = next++; await one(bufs[i % bufs.length], i); } }));
    process.stdout.write(JSON.stringify({ codes, seconds: (performance.now() - t0) / 1000 }));
  `;
  const child = await runNode(code, { input: JSON.stringify({ port, packets: packets.map((p) => p.toString('base64')), attempts, parallel, localAddress }), timeoutMs: SOAK ? 1_200_000 : 300_000 });
  const out = JSON.parse(child.stdout || '{}') as { codes?: Record<string, number>; seconds?: number };
  return { codes: out.codes ?? {}, seconds: out.seconds ?? NaN, child };
}
