import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's package (scripts/ensure-tools.mjs installs it for `npm test` and `.ci/run`). */
const REDIS_SERVER = '/usr/bin/redis-server';

/** A real `redis-server` of a test's own, on a free loopback port, keeping nothing on disk. */
export interface TestRedis {
  /** `redis://127.0.0.1:PORT`: what `serve --bus` takes. */
  readonly url: string;
  readonly port: number;
  /** The running server's pid (null while it is stopped): for the bench's CPU reading and for kill -9. */
  pid(): number | null;
  /** Stops it (SIGTERM, or the signal given): an outage. Resolves once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port (empty: nothing was saved), once it answers PING. */
  restart(): Promise<void>;
  /** Stops it and removes its folder; also registered on the test's teardown. */
  close(): Promise<void>;
}

/** Where a test registers its cleanup (a tap `t`). */
interface Teardown {
  teardown(fn: () => unknown): void;
}

/**
 * Starts a redis-server for one test, stopped on the test's teardown. A missing
 * redis-server is an error, never a silent skip: the cluster's tests would pass
 * having proven nothing.
 */
export async function startRedis(t: Teardown): Promise<TestRedis> {
  const bin = redisServerPath();
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  let log = '';

  const launch = async (): Promise<void> => {
    log = '';
    // No RDB, no AOF: a restart is an empty Redis, as after a crash with persistence off.
    const c = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout!.on('data', (d: Buffer) => (log += d));
    c.stderr!.on('data', (d: Buffer) => (log += d));
    child = c;
    const exited = new Promise<never>((_, reject) => c.once('exit', (code) => reject(new Error(`redis-server on port ${port} exited (${code}): ${log.trim()}`))));
    exited.catch(() => {}); // only awaited while starting
    await Promise.race([waitForPong(port, 15_000), exited]);
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  };

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => (closing ??= stop().then(() => rmSync(dir, { recursive: true, force: true })));
  t.teardown(close);
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: () => (child?.pid ?? null),
    stop,
    async restart() {
      await stop();
      await launch();
    },
    close,
  };
}

/** The redis-server binary, or a loud error saying how to get it. */
export function redisServerPath(): string {
  if (existsSync(REDIS_SERVER)) return REDIS_SERVER;
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const found = which.status === 0 ? which.stdout.trim() : '';
  if (found) return found;
  throw new Error('redis-server is not installed: the Redis bus tests need it (apt-get install redis-server, or run `node scripts/ensure-tools.mjs` as root)');
}

/** A port nothing listens on right now (the kernel's pick, released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once a PING on `port` is answered with PONG. */
async function waitForPong(port: number, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await pingOnce(port)) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok: boolean) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d: Buffer) => { got += d; if (got.includes('\r\n')) done(got.startsWith('+PONG')); });
  });
}
