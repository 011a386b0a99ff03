// PostgreSQL over TLS by default off this machine (issue 19 #7): with no sslmode,
// a remote host gets verify-full; a weaker mode to a remote host is one warning
// line, once, without the password; loopback and Unix sockets stay as given.
// Against a real PostgreSQL serving TLS with a development CA.
import t from 'tap';
import pg from 'pg';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { engine } from '../registry/postgres/index.js';
import { connectionConfig } from '../registry/postgres/pool.js';
import { isLocalPgHost, pgTlsPolicy } from '../registry/postgres/tls.js';
import { onRegistryWarning } from '../registry/index.js';
import type { Registry } from '../registry/interface.js';
import { makeDevCerts } from './helpers/dev-certs.js';
import { sharedPostgres } from './helpers/postgres.js';
import { CLI_PATH } from './helpers/cli.js';

/** What node-postgres makes of a connection string (no connection is opened). */
const sslOf = (url: string) => (new pg.Client(connectionConfig(url)) as unknown as { ssl: unknown }).ssl;
const sslOn = async (reg: Registry) => (await (reg as unknown as { sql: { rows<T>(q: string): Promise<T[]> } }).sql.rows<{ ssl: boolean }>(
  'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'))[0]?.ssl;

t.test('which hosts are this machine', async (t) => {
  for (const h of ['127.0.0.1', '127.8.9.10', '::1', '[::1]', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST', 'localhost.', '/var/run/postgresql', '/tmp'])
    t.ok(isLocalPgHost(h), `${h} is local`);
  for (const h of ['10.0.0.5', '192.168.1.1', '128.0.0.1', '0.0.0.0', '::', '::2', 'db.example.com', 'localhost.example.com', 'mylocalhost', '1270.0.0.1', 'fe80::1'])
    t.notOk(isLocalPgHost(h), `${h} is not local`);
});

t.test('no sslmode: verify-full off this machine, as given on it', async (t) => {
  const remote = pgTlsPolicy('postgres://cb:pw@db.example.com:5432/reg');
  t.equal(remote.url, 'postgres://cb:pw@db.example.com:5432/reg?sslmode=verify-full&uselibpqcompat=true');
  t.equal(remote.warning, null);
  t.same(sslOf('postgres://cb:pw@db.example.com:5432/reg'), {}, 'node-postgres: TLS, certificate and host name checked (no rejectUnauthorized=false, no checkServerIdentity override)');
  t.same(sslOf('postgres://cb:pw@10.1.2.3/reg?application_name=x'), {}, 'an IP address too, with other parameters');
  t.equal(sslOf('postgres://cb:pw@127.0.0.1:5432/reg'), false, 'loopback stays plaintext');
  t.equal(sslOf('postgres://cb:pw@localhost/reg'), false);
  t.equal(sslOf('postgres://cb:pw@%2Fvar%2Frun%2Fpostgresql/reg'), false, 'a Unix socket (encoded path)');
  t.equal(sslOf('postgres://cb@/reg?host=/var/run/postgresql'), false, 'a Unix socket (host= parameter, no host)');
  t.same(sslOf('postgres://cb@/reg?host=db.example.com'), {}, 'no host, host= naming a remote one');
  t.match(pgTlsPolicy('postgres://cb:pw@db.example.com:99999/reg').url, /sslmode=verify-full/, 'a URL that does not parse: TLS all the same (node-postgres reports it)');
  // host= wins over the URL's host in node-postgres, so it decides here too.
  t.same(sslOf('postgres://cb:pw@localhost/reg?host=db.example.com'), {}, 'host= naming a remote host');
  t.match(pgTlsPolicy('postgres://cb:pw@db.example.com/reg?sslmode=verify-ca&sslrootcert=/x.pem').url, /sslmode=verify-ca&sslrootcert=\/x\.pem&uselibpqcompat=true$/, 'an explicit mode is kept');
});

t.test('a weaker sslmode to a remote host: one warning line, once, no password', async (t) => {
  const heard: string[] = [];
  onRegistryWarning((m) => heard.push(m));
  const secret = 'Xy@Secr3t Tail';
  const url = (mode: string, host = 'db.example.com') => `postgres://cb:${encodeURIComponent(secret)}@${host}:5432/reg?sslmode=${mode}`;
  t.equal(sslOf(url('disable')), false, 'sslmode=disable is honoured');
  sslOf(url('disable'));
  sslOf(url('disable'));
  t.equal(heard.length, 1, 'once per process, however often the pool connects');
  t.match(heard[0], /^the registry's PostgreSQL host "db\.example\.com" is not this machine and sslmode=disable sends .* in clear$/);
  for (const mode of ['prefer', 'allow', 'require']) sslOf(url(mode));
  t.equal(heard.length, 4, 'prefer, allow and require warn too');
  t.match(heard[3], /sslmode=require does not check the server's certificate/);
  // Any readable file will do: nothing connects, node-postgres only reads it.
  const ca = encodeURIComponent(fileURLToPath(import.meta.url));
  sslOf(url(`require&sslrootcert=${ca}`));
  sslOf(url(`verify-ca&sslrootcert=${ca}`));
  sslOf(url('verify-full'));
  sslOf(url('disable', '127.0.0.1'));
  t.equal(heard.length, 4, 'checked TLS, or loopback: no warning');
  for (const m of heard) {
    t.notMatch(m, /Secr3t|Xy%40/, 'no password');
    t.notMatch(m, /\n/, 'one line');
  }
});

t.test('a command (no broker): the warning is one line on stderr, once', async (t) => {
  // The built registry module in a process of its own, as a CLI command loads it; nothing connects.
  const pool = pathToFileURL(CLI_PATH.replace(/cli[\\/]main\.js$/, 'registry/postgres/pool.js')).href;
  const url = 'postgres://cb:Secr3t%20Pw@10.20.30.40:5432/reg?sslmode=disable';
  const code = `const { connectionConfig } = await import(${JSON.stringify(pool)}); for (let i = 0; i < 3; i++) connectionConfig(${JSON.stringify(url)});`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /^credbroker: warning: the registry's PostgreSQL host "10\.20\.30\.40" is not this machine and sslmode=disable sends [^\n]* in clear\n$/);
  t.notMatch(r.stderr, /Secr3t/);
});

t.test('real PostgreSQL with TLS: verify-full with its CA is encrypted; a wrong CA is refused in one line', async (t) => {
  const pgc = await sharedPostgres();
  const url = await pgc.newDatabase();
  for (const host of ['127.0.0.1', 'localhost']) {
    const reg = await engine.open(`${url.replace('127.0.0.1', host)}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pgc.caCert)}`, {});
    t.teardown(() => reg.close());
    t.equal(await sslOn(reg), true, `${host}: the connection is encrypted`);
  }
  const plain = await engine.open(url, {});
  t.teardown(() => plain.close());
  t.equal(await sslOn(plain), false, 'loopback with no sslmode: plaintext, as before');

  const other = makeDevCerts();
  t.teardown(() => other.remove());
  const err = await engine.open(`${url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(other.caCert)}`, {}).then(() => null, (e: unknown) => e) as { code?: string; message?: string } | null;
  t.equal(err?.code, 'ERR_REGISTRY', 'refused, not retried as an outage');
  t.match(err?.message, /certificate/);
  t.notMatch(err?.message ?? '', /\n/, 'one line');
  t.notMatch(err?.message ?? '', pgc.password, 'no password');
});
