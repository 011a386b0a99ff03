/**
 * A redis-server of one's own (Debian's package) on a free loopback port,
 * keeping nothing on disk: the bus for the cluster bench, and for the tests
 * (test/helpers/redis.ts adds the clean-up on test teardown).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

/** Debian's package (scripts/ensure-tools.mjs installs it for `npm test` and `.ci/run`). */
const REDIS_SERVER = '/usr/bin/redis-server';

/** How the server is protected: an ACL user (the default user is then off), and TLS only (no plain port). */
export interface RedisServerOptions {
  readonly user?: { readonly name: string; readonly password: string };
  /** PEM files: the server's certificate and key, and the CA that signed them. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
}

export interface RedisServer {
  /** `redis://127.0.0.1:PORT` (`rediss://USER:PASSWORD@…` with the options): what `serve --bus` takes. */
  readonly url: string;
  readonly port: number;
  /** The running server's pid (null while it is stopped): for its CPU time, and for kill -9. */
  pid(): number | null;
  /** Stops it (SIGTERM, or the signal given): an outage. Resolves once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port (empty: nothing was saved), once it answers PING. */
  restart(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

/** The redis-server binary, or a loud error saying how to get it. */
export function redisServerPath(): string {
  if (existsSync(REDIS_SERVER)) return REDIS_SERVER;
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const found = which.status === 0 ? which.stdout.trim() : '';
  if (found) return found;
  throw new Error('redis-server is not installed: the Redis bus needs it (apt-get install redis-server, or run `node scripts/ensure-tools.mjs` as root)');
}

/**
 * Starts a redis-server with no RDB and no AOF (a restart is an empty Redis) and resolves once it answers PING.
 * @param port where (default: a free port): a broker already waiting for its bus there, say
 */
export async function startRedisServer(port?: number, opts: RedisServerOptions = {}): Promise<RedisServer> {
  const bin = redisServerPath();
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-redis-'));
  port ??= await freePort();
  let child: ChildProcess | null = null;

  const launch = async (): Promise<void> => {
    let log = '';
    const listen = opts.tls
      ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', opts.tls.cert, '--tls-key-file', opts.tls.key, '--tls-ca-cert-file', opts.tls.ca, '--tls-auth-clients', 'no']
      : ['--port', String(port)];
    const users = opts.user ? ['--user', 'default', 'off', '--user', opts.user.name, 'on', `>${opts.user.password}`, '~*', '&*', '+@all'] : [];
    const c = spawn(bin, [...listen, ...users, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout!.on('data', (d: Buffer) => (log += d));
    c.stderr!.on('data', (d: Buffer) => (log += d));
    child = c;
    const exited = new Promise<never>((_, reject) => c.once('exit', (code) => reject(new Error(`redis-server on port ${port} exited (${code}): ${log.trim()}`))));
    exited.catch(() => {}); // only awaited while starting
    await Promise.race([waitForPong(port, 15_000, opts.tls?.ca), exited]);
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
  await launch();
  const auth = opts.user ? `${encodeURIComponent(opts.user.name)}:${encodeURIComponent(opts.user.password)}@` : '';
  return {
    url: `${opts.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${port}`,
    port,
    pid: () => (child?.pid ?? null),
    stop,
    async restart() {
      await stop();
      await launch();
    },
    close: () => (closing ??= stop().then(() => rmSync(dir, { recursive: true, force: true }))),
  };
}

/** Resolves once a PING on `port` (over TLS when `ca` is given) is answered: PONG, or NOAUTH from a server that wants a user. */
async function waitForPong(port: number, withinMs: number, ca?: string): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await pingOnce(port, ca)) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function pingOnce(port: number, ca?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = ca ? tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(ca) }) : createConnection({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok: boolean) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.once(ca ? 'secureConnect' : 'connect', () => sock.write('PING\r\n'));
    sock.on('data', (d: Buffer) => { got += d; if (got.includes('\r\n')) done(got.startsWith('+PONG') || got.startsWith('-NOAUTH')); });
  });
}
