// `credbroker operator add|passwd|token|list|remove` (SPEC "Operators"): the JSON
// shapes scripts rely on, secrets printed once and stored only as hashes, one-line
// errors with their exit codes, every action audited as `cli`; and `serve` refusing
// an ops port off loopback without TLS.
import t from 'tap';
import { openRegistry } from '../registry/index.js';
import { freshRegistryTarget } from './helpers/backend.js';
import { lines, runCli, serveCli } from './helpers/cli.js';

const db = await freshRegistryTarget(t);
t.equal((await runCli(['init', '--db', db])).code, 0);
const cli = (...args: string[]) => runCli([...args, '--db', db]);
const json = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>;

t.test('add, passwd, token, list, remove', async (t) => {
  const added = await cli('operator', 'add', 'alice', '--role', 'operator', '--json');
  t.equal(added.code, 0, added.stderr);
  const a = json(added.stdout);
  t.same(Object.keys(a), ['name', 'role', 'password'], 'add --json: {"name","role","password"}');
  t.match(a, { name: 'alice', role: 'operator', password: /^[A-Za-z0-9_-]{32}$/ });

  const again = await cli('operator', 'add', 'alice', '--role', 'viewer');
  t.equal(again.code, 4, 'a taken name: exit 4');
  t.equal(lines(again.stderr).length, 1);
  t.match(again.stderr, /^credbroker: operator "alice" already exists/);
  const badRole = await cli('operator', 'add', 'bob', '--role', 'root');
  t.equal(badRole.code, 2, 'a bad role: exit 2');
  t.match(badRole.stderr, /^credbroker: invalid role "root": use viewer, operator, admin\n$/);
  t.equal((await cli('operator', 'add', 'bad name', '--role', 'viewer')).code, 2, 'a bad name: exit 2');

  const passwd = json((await cli('operator', 'passwd', 'alice', '--json')).stdout);
  t.same(Object.keys(passwd), ['name', 'role', 'password']);
  t.not(passwd.password, a.password, 'a new password');

  const tok = await cli('operator', 'token', 'alice', '--ttl', '30d', '--json');
  t.equal(tok.code, 0, tok.stderr);
  const token = json(tok.stdout);
  t.same(Object.keys(token), ['name', 'token', 'expiresAt'], 'token --json: {"name","token","expiresAt"}');
  t.match(token.token, /^cbop_[A-Za-z0-9_-]{49}$/);
  const days = (Date.parse(String(token.expiresAt)) - Date.now()) / 86_400_000;
  t.ok(days > 29.9 && days <= 30, `expires in 30 days (${days.toFixed(2)})`);
  const defaultTtl = json((await cli('operator', 'token', 'alice', '--json')).stdout);
  t.ok(Math.abs((Date.parse(String(defaultTtl.expiresAt)) - Date.now()) / 86_400_000 - 90) < 0.1, 'default 90 days');
  t.equal((await cli('operator', 'token', 'alice', '--ttl', '400d')).code, 2, 'over a year: exit 2');
  t.equal((await cli('operator', 'token', 'nobody')).code, 3, 'an unknown operator: exit 3');

  const list = await cli('operator', 'list', '--json');
  const rows = JSON.parse(list.stdout) as Record<string, unknown>[];
  t.match(rows, [{ name: 'alice', role: 'operator', tokens: 2 }]);
  for (const secret of [a.password, passwd.password, token.token]) t.notOk(list.stdout.includes(String(secret)), 'list shows no secret');
  t.notOk(list.stdout.includes('scrypt'), 'nor a hash');

  const reg = await openRegistry(db, { readonly: true });
  const stored = (await reg.operators.get('alice'))!;
  t.match(stored.passwordHash, /^scrypt\$32768\$8\$3\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/, 'stored as scrypt with its salt and cost');
  const audit = await reg.audit.query({ action: 'operator.*' });
  await reg.close();
  t.same(audit.map((e) => e.action).reverse(), ['operator.add', 'operator.passwd', 'operator.token', 'operator.token']);
  t.ok(audit.every((e) => e.actor === 'cli'), 'audited as cli');
  t.notOk(JSON.stringify(audit).includes(String(token.token)), 'no secret in the audit');

  t.equal((await cli('operator', 'remove', 'alice')).code, 0);
  const gone = await cli('operator', 'remove', 'alice');
  t.equal(gone.code, 3, 'removing twice: exit 3');
  t.match(gone.stderr, /^credbroker: no operator "alice"/);
});

t.test('serve with --http-host off loopback and no TLS: exit 2, one line', async (t) => {
  const r = await serveCli(['--db', db, '--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0', '--http-host', '0.0.0.0']);
  if (!('code' in r)) {
    await r.stop();
    t.fail('started an ops port off loopback without TLS');
    return;
  }
  t.equal(r.code, 2);
  t.equal(lines(r.stderr).length, 1, r.stderr);
  t.match(r.stderr, /^credbroker: --http-host 0\.0\.0\.0 is not loopback: .*--http-tls-cert and --http-tls-key/);
});
