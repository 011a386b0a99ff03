import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openIssuer, provisionDevices, type DeviceCredentials, type Issuer } from '../../provisioning/index.js';
import { registryTargetIn } from './backend.js';
import { spawnCli } from './cli.js';

/** `credbroker serve` as an operator runs it (dist/ CLI, a pipe for stdout), with its real log output. */
export interface ServeProcess {
  readonly db: string;
  readonly issuer: Issuer;
  readonly mqttPort: number;
  readonly httpPort: number;
  /** The serve process (with --workers, the primary). */
  readonly pid: number;
  /** stdout so far, line by line (the logs). */
  lines(): string[];
  /** The stdout lines that parse as JSON (a JSON-format log). */
  records(): Record<string, unknown>[];
  stderr(): string;
  provision(ids: string[], opts?: { ttlMs?: number }): Promise<DeviceCredentials[]>;
  /** Resolves with the first stdout or stderr line matching `pattern` (seen already or to come); rejects after `withinMs`. */
  waitForLine(pattern: RegExp, withinMs?: number): Promise<string>;
  /** SIGTERM, then resolves with the exit code once the process is gone. */
  stop(): Promise<number | null>;
}

export interface ServeOptions {
  /** Serve this registry (another node's, say) instead of a new one in a temp folder; it is left in place on stop. */
  readonly db?: string;
}

/** A new registry (a file in a temp folder, a database on a postgres run: helpers/backend.ts), or the one given, and `serve` on it, on ephemeral loopback ports. */
export async function startServe(args: string[] = [], env: Record<string, string> = {}, opts: ServeOptions = {}): Promise<ServeProcess> {
  const dir = opts.db ? null : mkdtempSync(join(tmpdir(), 'credbroker-serve-'));
  const db = opts.db ?? await registryTargetIn(dir!);
  const issuer = await openIssuer(db);
  const child = spawnCli(['serve', '--db', db, '--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0', ...args], { env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // "credbroker: broker ready — mqtt N, tls off, ws off, http M; ..." on stderr.
  const ports = await new Promise<{ mqtt: number; http: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 90_000); // a node forks its workers: on a loaded 2-core box (load 20+) that took over 30 s
    const check = () => {
      const m = /broker ready — mqtt (\d+), tls \S+, ws \S+, http (\d+)/.exec(err);
      if (m) { clearTimeout(timer); resolve({ mqtt: Number(m[1]), http: Number(m[2]) }); }
    };
    child.stderr!.on('data', check);
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`serve exited (${code}) before starting: ${err}`)); });
  });
  // The log goes out asynchronously: wait for its start-up line, so that later lines are the test's.
  for (const end = Date.now() + 10_000; !out.includes('credbroker listening') && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
  const lines = () => out.split('\n').filter(Boolean);
  let stopping: Promise<number | null> | null = null;
  return {
    db, issuer, mqttPort: ports.mqtt, httpPort: ports.http, pid: child.pid!,
    lines,
    records: () => lines().flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } }),
    stderr: () => err,
    async provision(ids, opts = {}) {
      const res = await provisionDevices(issuer, ids.map((id, i) => ({ line: i + 2, id })), { profile: 'sensor', brokerUrl: `mqtt://127.0.0.1:${ports.mqtt}`, ...opts });
      return res.provisioned;
    },
    async waitForLine(pattern, withinMs = 30_000) {
      for (const end = Date.now() + withinMs; ;) {
        const hit = [...lines(), ...err.split('\n')].find((l) => pattern.test(l));
        if (hit !== undefined) return hit;
        if (Date.now() > end) throw new Error(`serve wrote no line matching ${pattern} within ${withinMs} ms: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop() {
      stopping ??= (async () => {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        const code = await exited;
        clearTimeout(timer);
        issuer.reg.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
        return code;
      })();
      return stopping;
    },
  };
}
