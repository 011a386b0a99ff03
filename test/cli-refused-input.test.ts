import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { lines, runCli, type CliResult } from './helpers/cli.js';
import { registryTargetIn } from './helpers/backend.js';

/** A refused command: non-zero exit, exactly one `credbroker: ...` line on stderr, nothing on stdout, no stack trace. */
function assertRefused(t: Test, r: CliResult, expect: { code?: number; message: RegExp }): void {
  t.not(r.code, 0, 'exit code is non-zero');
  if (expect.code !== undefined) t.equal(r.code, expect.code, `exit code ${expect.code}`);
  const errLines = lines(r.stderr);
  t.equal(errLines.length, 1, `stderr is one line: ${JSON.stringify(r.stderr)}`);
  t.match(errLines[0] ?? '', /^credbroker: /, 'stderr starts with "credbroker: "');
  t.match(errLines[0] ?? '', expect.message);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  t.equal(r.stdout, '', 'nothing on stdout');
}

t.test('refused input', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  const out = join(dir, 'creds');
  const init = await runCli(['init', '--db', db]);
  t.equal(init.code, 0, `init: ${init.stderr}`);

  const batch = (name: string, content: string | Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  const cases: { name: string; args: string[]; code?: number; message: RegExp; input?: string }[] = [
    { name: 'id with /', args: ['provision', 'a/b'], code: 2, message: /invalid device id "a\/b": character "\/" is not allowed/ },
    { name: 'id +', args: ['provision', '+'], code: 2, message: /invalid device id "\+": character "\+" is not allowed/ },
    { name: 'id #', args: ['provision', '#'], code: 2, message: /invalid device id "#": character "#" is not allowed/ },
    { name: 'id with a space', args: ['provision', 'a b'], code: 2, message: /invalid device id "a b": character " " is not allowed/ },
    { name: 'empty id', args: ['provision', ''], code: 2, message: /invalid device id "": it is empty/ },
    { name: '129 characters', args: ['provision', 'x'.repeat(129)], code: 2, message: /it is 129 characters long \(at most 128\)/ },
    { name: 'non-ASCII id', args: ['provision', 'café'], code: 2, message: /invalid device id "caf\\u00e9": character "\\u00e9" is not allowed/ },
    {
      name: 'NUL in a CSV row', args: ['provision', '--batch', batch('nul.csv', 'id\nok-1\nbad\u0000id\n')], code: 2,
      message: /line 3: invalid device id "bad\\u0000id": character "\\u0000" is not allowed.*nothing was written/,
    },
    {
      name: 'NUL in a JSONL row', args: ['provision', '--batch', batch('nul.jsonl', '{"id":"ok-1"}\n{"id":"a\\u0000b"}\n')], code: 2,
      message: /line 2: invalid device id "a\\u0000b"/,
    },
    { name: 'unknown profile', args: ['provision', 'dev-1', '--profile', 'nope'], code: 3, message: /unknown profile "nope" \(known: observer, sensor\)/ },
    { name: 'unknown profile in a batch row', args: ['provision', '--batch', batch('prof.csv', 'id,profile\nd-1,sensor\nd-2,nope\n')], code: 2, message: /line 3: unknown profile "nope"/ },
    { name: '--ttl above the 24h cap', args: ['provision', 'dev-1', '--ttl', '25h'], code: 2, message: /--ttl 25h is above the cap of 24h/ },
    { name: 'unparseable --ttl', args: ['provision', 'dev-1', '--ttl', '5 minutes'], code: 2, message: /invalid --ttl "5 minutes"/ },
    { name: 'token --ttl above the cap', args: ['token', 'dev-1', '--ttl', '48h'], code: 2, message: /above the cap/ },
    {
      name: 'CSV row with the wrong field count', args: ['provision', '--batch', batch('fields.csv', 'id,profile\nd-1,sensor\nd-2,sensor,extra\n')], code: 2,
      message: /line 3: has 3 field\(s\), the header has 2/,
    },
    { name: 'CSV with an unterminated quote', args: ['provision', '--batch', batch('quote.csv', 'id\nd-1\n"d-2\nd-3\n')], code: 2, message: /batch CSV is malformed/ },
    { name: 'CSV without an id column', args: ['provision', '--batch', batch('noid.csv', 'name,profile\nd-1,sensor\n')], code: 2, message: /no "id" column/ },
    { name: 'JSONL line that is not JSON', args: ['provision', '--batch', batch('bad.jsonl', '{"id":"d-1"}\n{"id":\n')], code: 2, message: /line 2: not valid JSON/ },
    {
      name: 'duplicate ids in a batch (by line number)', args: ['provision', '--batch', batch('dup.csv', 'id\nd-1\nd-2\nd-3\nd-1\n')], code: 2,
      message: /line 5: duplicate device id "d-1" \(first on line 2\); nothing was written/,
    },
    { name: 'empty batch', args: ['provision', '--batch', batch('empty.csv', 'id\n')], code: 2, message: /no device rows/ },
    { name: 'missing batch file', args: ['provision', '--batch', join(dir, 'nope.csv')], code: 2, message: /cannot read batch file .*ENOENT/ },
    { name: 'same id twice on the command line', args: ['provision', 'd-1', 'd-1'], code: 2, message: /device id "d-1" is given twice/ },
    { name: 'ids and --batch together', args: ['provision', 'd-1', '--batch', batch('x.csv', 'id\nd-2\n')], code: 2, message: /not both/ },
    { name: 'bad broker URL', args: ['provision', 'd-1', '--broker-url', 'ftp://example.com'], code: 2, message: /invalid broker URL/ },
    { name: 'credential lifetime shorter than the token', args: ['provision', 'd-1', '--credential-ttl', '10m'], code: 2, message: /credential lifetime 10m is shorter/ },
    { name: 'unknown option (commander usage error)', args: ['provision', 'd-1', '--frobnicate'], code: 2, message: /unknown option '--frobnicate'/ },
    { name: 'unknown command', args: ['provison'], code: 2, message: /unknown command 'provison'/ },
    { name: 'bad --status choice', args: ['devices', '--status', 'lost'], code: 2, message: /Allowed choices are active, revoked/ },
    { name: 'bad --since', args: ['audit', '--since', 'last tuesday'], code: 2, message: /invalid --since "last tuesday"/ },
    { name: 'bad --limit', args: ['audit', '--limit', '-3'], code: 2, message: /invalid --limit/ },
    { name: 'token for an unknown device', args: ['token', 'ghost'], code: 3, message: /no device "ghost" in the registry/ },
    { name: 'revoke an unknown token', args: ['revoke', '--token', 'AAAAAAAAAAAAAAAAAAAAAA'], code: 3, message: /no token with jti/ },
    { name: 'revoke given a token instead of a jti', args: ['revoke', '--token', 'eyJhbGciOiJFUzI1NiJ9.e30.sig'], code: 2, message: /give the token's jti/ },
    { name: 'profile with a bad pattern', args: ['profile', 'set', 'p1', '--pub', 'a/#/b'], code: 2, message: /not a valid MQTT topic filter/ },
    { name: 'profile with an unknown variable', args: ['profile', 'set', 'p1', '--pub', 'devices/{devcie}/x'], code: 2, message: /unknown variable \{devcie\}/ },
    { name: 'init with another alg', args: ['init', '--alg', 'EdDSA'], code: 2, message: /already exists with alg ES256 \(asked for EdDSA\)/ },
  ];

  // The cases are independent (each one is refused and writes nothing), so they run side by side.
  await t.test('each case', async (t) => {
    t.jobs = 4;
    for (const c of cases) {
      t.test(c.name, async (t) => {
        const needsSink = c.args[0] === 'provision' && !c.args.includes('--out');
        const args = [...c.args, ...(needsSink ? ['--out', out] : []), ...(c.args[0] === 'provision' && !c.args.includes('--profile') ? ['--profile', 'sensor'] : []), '--db', db];
        assertRefused(t, await runCli(args, { input: c.input }), c);
      });
    }
  });

  t.test('nothing was written by any refused command', async (t) => {
    const r = await runCli(['devices', '--json', '--db', db]);
    t.equal(r.code, 0);
    t.same(JSON.parse(r.stdout), [], 'devices --json is empty');
    t.same(existsSync(out) ? readdirSync(out).filter((f) => !f.startsWith('.')) : [], [], 'no credentials files');
  });

  t.test('provision without --out or --json refuses (the secrets would be lost)', async (t) => {
    assertRefused(t, await runCli(['provision', 'd-1', '--profile', 'sensor', '--db', db]), { code: 2, message: /refusing to provision without --out DIR or --json/ });
  });
});

t.test('--skip-invalid provisions the good rows only', async (t) => {
  const dir = t.testdir({
    'batch.csv': 'id,profile\ngood-1,\nbad/1,\ngood-2,observer\ngood-1,\n"with space",\ngood-3,sensor,x\ngood-4,\n',
  });
  const db = await registryTargetIn(dir);
  const out = join(dir, 'creds');
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const r = await runCli(['provision', '--batch', join(dir, 'batch.csv'), '--profile', 'sensor', '--out', out, '--skip-invalid', '--db', db]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /provisioned 3, skipped \(already provisioned\) 0, invalid 4/);
  t.match(r.stderr, /line 3: invalid device id "bad\/1"/);
  t.match(r.stderr, /line 5: duplicate device id "good-1" \(first on line 2\)/);
  t.match(r.stderr, /line 6: invalid device id "with space"/);
  t.match(r.stderr, /line 7: has 3 field\(s\)/);
  const devices = JSON.parse((await runCli(['devices', '--json', '--db', db])).stdout) as { id: string; profile: string }[];
  t.same(devices.map((d) => [d.id, d.profile]), [['good-1', 'sensor'], ['good-2', 'observer'], ['good-4', 'sensor']]);
  t.same(readdirSync(out).sort(), ['good-1.json', 'good-2.json', 'good-4.json']);
});

t.test('a registry from a newer schema is refused and left untouched', async (t) => {
  const dir = t.testdir();
  const db = join(dir, 'registry.db'); // SQLite's user_version and bytes: its own case
  t.equal((await runCli(['init', '--db', db])).code, 0);
  t.equal((await runCli(['provision', 'd-1', '--profile', 'sensor', '--out', join(dir, 'creds'), '--db', db])).code, 0);
  const conn = new Database(db);
  conn.pragma('user_version = 99');
  conn.close();
  const hash = () => createHash('sha256').update(readFileSync(db)).digest('hex');
  const before = hash();
  for (const args of [['devices'], ['provision', 'd-2', '--profile', 'sensor', '--json'], ['keys', 'list'], ['init'], ['audit']]) {
    const r = await runCli([...args, '--db', db]);
    assertRefused(t, r, { code: 5, message: /has schema version 99 but this credbroker only knows up to \d+: upgrade credbroker \(the file was not changed\)/ });
  }
  t.equal(hash(), before, 'the registry file is byte-for-byte unchanged');
  const check = new Database(db, { readonly: true });
  t.equal(check.pragma('user_version', { simple: true }), 99);
  check.close();
});

t.test('read-only commands do not create a registry from a mistyped --db', async (t) => {
  const dir = t.testdir();
  const db = join(dir, 'typo', 'registry.db');
  for (const args of [['devices'], ['show', 'd-1'], ['audit'], ['keys', 'jwks'], ['revoke', 'd-1'], ['token', 'd-1']]) {
    assertRefused(t, await runCli([...args, '--db', db]), { code: 5, message: /no registry at .*typo\/registry\.db: create it with "credbroker init"/ });
  }
  t.notOk(existsSync(join(dir, 'typo')), 'nothing was created');
  const env = await runCli(['devices'], { env: { CREDBROKER_DB: db } });
  assertRefused(t, env, { code: 5, message: /no registry at .*typo\/registry\.db/ });
});
