import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A throwaway PostgreSQL cluster (Debian's `postgresql`, no mocks) for the tests
 * (test/helpers/postgres.ts) and the bench: initdb into a temp folder, one
 * postmaster on a free 127.0.0.1 port with its unix socket in that folder, fsync
 * off (nobody pulls the plug on it). Startup costs about a second on a small box,
 * a database (`newDatabase`) a few tens of milliseconds.
 */
export interface PgCluster {
  readonly port: number;
  /** The application role's password: tests assert it never shows up in logs or errors. */
  readonly password: string;
  /** The application role (not a superuser), owner of every database made by `newDatabase`. */
  readonly user: string;
  /** With `tls`: the CA that signed the server's certificate (plain connections are accepted too). */
  readonly caCert: string | null;
  /** `postgres://user:password@127.0.0.1:PORT/db`. */
  url(db: string): string;
  /** A fresh empty database owned by the application role; returns its URL. */
  newDatabase(name?: string): Promise<string>;
  /** Runs SQL as the superuser (over the unix socket) in `db`. */
  admin<T extends pg.QueryResultRow = pg.QueryResultRow>(db: string, sql: string, params?: unknown[]): Promise<pg.QueryResult<T>>;
  /** Fast shutdown (clients are disconnected): an outage. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  readonly running: boolean;
  /** Stops it and removes its folder. */
  destroy(): void;
}

const PG_ROOT = '/usr/lib/postgresql';

/** The newest installed major version's bin folder; throws (never skips) when there is none. */
export function postgresBinDir(): string {
  const versions = existsSync(PG_ROOT)
    ? readdirSync(PG_ROOT).filter((v) => existsSync(join(PG_ROOT, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(`PostgreSQL is not installed (no ${PG_ROOT}/<version>/bin/initdb): apt-get install postgresql (scripts/ensure-tools.mjs does it for npm test)`);
  }
  return join(PG_ROOT, versions[0]!, 'bin');
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** initdb and postgres refuse to run as root: as root, everything runs as the `postgres` user. */
function asPostgres(bin: string, args: string[], opts: { allowFail?: boolean } = {}): string {
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 120_000 });
  if (!opts.allowFail && (r.error || r.status !== 0)) {
    throw new Error(`${bin} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}${r.stdout}`);
  }
  return `${r.stdout}${r.stderr}`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface ClusterOptions {
  /** PEM files to serve TLS with (copied in). */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
}

/** Starts a new cluster, stopped and removed when the process exits (or by `destroy`). */
export async function startPostgres(opts: ClusterOptions = {}): Promise<PgCluster> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'postgres.log');
  const tls = opts.tls && { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), ca: join(dir, 'ca.crt') };
  if (opts.tls && tls) for (const k of ['cert', 'key', 'ca'] as const) writeFileSync(tls[k], readFileSync(opts.tls[k]), { mode: 0o600 });
  if (isRoot()) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    if (!Number.isInteger(uid) || uid <= 0) throw new Error('running as root but there is no `postgres` user to run initdb as (Debian\'s postgresql package creates it)');
    for (const f of [dir, ...(tls ? [tls.cert, tls.key] : [])]) chownSync(f, uid, gid);
  }
  chmodSync(dir, 0o711); // the CA certificate inside is read by the caller's own user
  const user = 'credbroker';
  // Not URL-special, so URLs need no escaping; distinctive, so a leak is easy to grep.
  const password = `pw${randomBytes(12).toString('hex')}`;
  asPostgres(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale', 'C', '--no-sync']);
  // Loopback TCP needs the password (redaction is exercised); the unix socket in our own folder is trusted (admin).
  writeFileSync(join(data, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n');
  let port = 0;
  let running = false;
  const serverOpts = () => [
    `-c port=${port}`, "-c listen_addresses='127.0.0.1'", `-c unix_socket_directories='${dir}'`,
    '-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off',
    ...(tls ? [`-c ssl=on -c ssl_cert_file='${tls.cert}' -c ssl_key_file='${tls.key}'`] : []),
    '-c shared_buffers=32MB', '-c max_connections=200', '-c log_min_messages=warning',
  ].join(' ');
  const pgCtl = (args: string[], allowFail = false) => asPostgres(join(bin, 'pg_ctl'), ['-D', data, ...args], { allowFail });
  const startOnce = () => pgCtl(['-l', log, '-w', '-t', '60', '-o', serverOpts(), 'start']);
  const cleanup = () => {
    if (running) pgCtl(['-m', 'immediate', '-w', 'stop'], true);
    running = false;
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  // A process killed by a signal (tap's file timeout sends SIGTERM) runs no 'exit' handler: stop the postmaster, then die of the signal.
  const onSignal = (sig: NodeJS.Signals) => { cleanup(); process.kill(process.pid, sig); };
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
  for (const sig of signals) process.once(sig, onSignal);

  // A port found free can be taken before the postmaster binds it: try another.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      startOnce();
      running = true;
      break;
    } catch (err) {
      const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
      if (attempt >= 3 || !/could not bind|Address already in use/i.test(text)) { cleanup(); throw new Error(`${(err as Error).message}\n${text}`); }
    }
  }

  const admin = async <T extends pg.QueryResultRow>(db: string, sql: string, params: unknown[] = []) => {
    const c = new pg.Client({ host: dir, port, user: 'postgres', database: db });
    await c.connect();
    try {
      return await c.query<T>(sql, params);
    } finally {
      await c.end();
    }
  };
  await admin('postgres', `CREATE ROLE ${user} LOGIN PASSWORD '${password}'`);
  let dbs = 0;

  return {
    port, password, user, caCert: tls?.ca ?? null,
    get running() { return running; },
    url: (db) => `postgres://${user}:${password}@127.0.0.1:${port}/${db}`,
    admin,
    async newDatabase(name) {
      const db = name ?? `t${process.pid}_${++dbs}`;
      if (!/^[a-z0-9_]+$/.test(db)) throw new Error(`database name ${db}: use [a-z0-9_]`);
      await admin('postgres', `CREATE DATABASE ${db} OWNER ${user}`);
      return `postgres://${user}:${password}@127.0.0.1:${port}/${db}`;
    },
    async stop() {
      if (!running) return;
      pgCtl(['-m', 'fast', '-w', 'stop']);
      running = false;
    },
    async start() {
      if (running) return;
      startOnce();
      running = true;
    },
    destroy() {
      process.removeListener('exit', cleanup);
      for (const sig of signals) process.removeListener(sig, onSignal);
      cleanup();
    },
  };
}
