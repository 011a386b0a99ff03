import t, { type Test } from 'tap';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI_PATH, jwtPayload, lines, runCli, type CliOptions, type CliResult } from './helpers/cli.js';
import { localRegistryPath } from '../registry/index.js';
import { registryTargetIn } from './helpers/backend.js';

// Every bad input an operator can type is exit 2 (or the code of its kind) with one
// line that says what is wrong in the operator's own terms — never "unexpected error".

function assertOneLine(t: Test, r: CliResult, code: number, message: RegExp): void {
  t.equal(r.code, code, `exit ${code}`);
  const errLines = lines(r.stderr);
  t.equal(errLines.length, 1, `one line: ${JSON.stringify(r.stderr)}`);
  t.match(errLines[0] ?? '', /^credbroker: /);
  t.match(errLines[0] ?? '', message);
  t.notMatch(r.stderr, /unexpected error/, 'not an unexpected error');
  t.match(errLines[0] ?? '', /^[\x20-\x7e\u2013\u2014\u2026]*$/, 'printable: no raw bytes echoed');
}

/** A temp folder others may traverse (the read-only cases run as another user). */
function openTempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-ops-'));
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const isRoot = process.getuid?.() === 0;
/** As root, the checks that need a permission to be missing run as nobody (root bypasses file modes). */
const asOther: CliOptions = isRoot ? { uid: 65534, gid: 65534 } : {};
// nobody must be able to run the CLI at all: a checkout under a 0700 folder (mktemp -d) hides it.
if (isRoot && spawnSync(process.execPath, ['-e', 'require("fs").accessSync(process.argv[1], 4)', CLI_PATH], { uid: 65534, gid: 65534 }).status !== 0) {
  throw new Error(`uid 65534 (nobody) cannot read ${CLI_PATH}: the checks that run the CLI as another user need a checkout every user can read (not under a 0700 folder)`);
}

t.test('bad input is exit 2 with one line', async (t) => {
  const dir = t.testdir({
    'semicolons.csv': 'id;profile\npump-1;sensor\npump-2;sensor\n',
    'utf16.csv': Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('id\r\npump-1\r\n', 'utf16le')]),
    'utf16-nobom.csv': Buffer.from('id\npump-1\n', 'utf16le'),
    'devices.xlsx': Buffer.concat([Buffer.from('PK\x03\x04\x14\x00\x06\x00', 'latin1'), Buffer.alloc(64, 7), Buffer.from('[Content_Types].xml')]),
    'devices.json': '[\n  {"id": "pump-1"},\n  {"id": "pump-2"}\n]\n',
    'latin1.csv': Buffer.from('id\npump-\xe9\n', 'latin1'),
    'binary.csv': Buffer.alloc(200, 0),
    'a-file': 'not a folder',
    'trailing-comma.json': '{\n  "mqttPort": 1883,\n  "wsPort": "off",\n}\n',
    'typo.json': '{"mqtPort": 1883}\n',
    'bad-port.json': '{"mqttPort": "abc"}\n',
    'array.json': '[1883]\n',
    'cert-only.json': '{"tlsCert": "/etc/credbroker/tls/server.crt"}\n',
  });
  const db = await registryTargetIn(dir);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  t.equal((await runCli(['provision', 'd-1', '--profile', 'sensor', '--json', '--db', db])).code, 0);

  const cases: { name: string; args: string[]; env?: Record<string, string>; code?: number; message: RegExp; not?: RegExp }[] = [
    // --out
    { name: '--out is a file', args: ['provision', 'd-2', '--profile', 'sensor', '--out', join(dir, 'a-file')], message: /--out .*a-file is a file, not a folder/ },
    { name: '--out under a file', args: ['provision', 'd-2', '--profile', 'sensor', '--out', join(dir, 'a-file', 'sub')], message: /--out .*a-file\/sub is a file, not a folder/ },
    { name: 'restore --out is a file', args: ['restore', 'd-1', '--out', join(dir, 'a-file')], message: /--out .*a-file is a file, not a folder/ },
    // serve: the setting named the way it was given
    { name: 'serve --log-level verbose', args: ['serve', '--log-level', 'verbose'], message: /invalid --log-level "verbose": expected one of fatal, error, warn, info, debug, trace, silent/ },
    { name: 'CREDBROKER_LOG_LEVEL=verbose', args: ['serve'], env: { CREDBROKER_LOG_LEVEL: 'verbose' }, message: /invalid CREDBROKER_LOG_LEVEL "verbose"/ },
    { name: 'serve --mqtt-port abc', args: ['serve', '--mqtt-port', 'abc'], message: /invalid --mqtt-port "abc": expected a port number/ },
    { name: 'CREDBROKER_MQTT_PORT=abc', args: ['serve'], env: { CREDBROKER_MQTT_PORT: 'abc' }, message: /invalid CREDBROKER_MQTT_PORT "abc": expected a port number/ },
    { name: 'mqttPort "abc" in the config file', args: ['serve', '--config', join(dir, 'bad-port.json')], message: /config file .*bad-port\.json: invalid mqttPort "abc"/ },
    { name: 'CREDBROKER_CONNECT_TIMEOUT_MS=soon', args: ['serve'], env: { CREDBROKER_CONNECT_TIMEOUT_MS: 'soon' }, message: /invalid CREDBROKER_CONNECT_TIMEOUT_MS "soon"/ },
    { name: 'config file with a trailing comma', args: ['serve', '--config', join(dir, 'trailing-comma.json')], message: /config file .*trailing-comma\.json is not valid JSON at line 4, column 1: .*\(a trailing comma before it\?\)/ },
    { name: 'config file holding an array', args: ['serve', '--config', join(dir, 'array.json')], message: /must hold one JSON object of settings/ },
    { name: 'unknown config key', args: ['serve', '--config', join(dir, 'typo.json')], message: /unknown config setting "mqtPort" in config file .*typo\.json: did you mean "mqttPort"\?/ },
    { name: 'tlsCert without tlsKey in the config file', args: ['serve', '--config', join(dir, 'cert-only.json')], message: /TLS needs both tlsCert \(config file .*cert-only\.json\) and --tls-key/ },
    { name: 'a TLS certificate that is not PEM', args: ['serve', '--tls-cert', join(dir, 'a-file'), '--tls-key', join(dir, 'a-file'), '--tls-port', '0', '--mqtt-port', 'off', '--ws-port', 'off', '--http-port', 'off', '--db', db], message: /TLS certificate .*a-file and key .*a-file are not usable: .*PEM/ },
    { name: 'a TLS key that is not there', args: ['serve', '--tls-cert', join(dir, 'a-file'), '--tls-key', join(dir, 'nope.key'), '--tls-port', '0', '--mqtt-port', 'off', '--ws-port', 'off', '--http-port', 'off', '--db', db], message: /cannot read TLS certificate or key: ENOENT on the key .*nope\.key/ },
    { name: 'missing config file', args: ['serve', '--config', join(dir, 'nope.json')], message: /cannot read config file .*nope\.json: ENOENT/ },
    // --ttl: named as typed, never restated
    { name: 'token --ttl 48h', args: ['token', 'd-1', '--ttl', '48h'], message: /--ttl 48h is above the cap of 24h/, not: /2d/ },
    { name: 'provision --ttl 48h', args: ['provision', 'd-2', '--profile', 'sensor', '--json', '--ttl', '48h'], message: /--ttl 48h is above the cap of 24h/, not: /2d/ },
    { name: 'profile set --ttl 48h', args: ['profile', 'set', 'p1', '--pub', 'a/b', '--ttl', '48h'], message: /--ttl 48h is above the cap of 24h/, not: /2d/ },
    { name: '--ttl 3600 (no unit)', args: ['token', 'd-1', '--ttl', '3600'], message: /invalid --ttl "3600": a duration needs a unit: 3600s, 3600m, 3600h or 3600d$/ },
    { name: '--ttl 14 (no unit)', args: ['claim', 'extend', 'c-1', '--ttl', '14'], message: /^credbroker: invalid --ttl "14": a duration needs a unit: 14s, 14m, 14h or 14d$/ },
    { name: '--ttl 90 (no unit)', args: ['provision', 'd-2', '--profile', 'sensor', '--json', '--ttl', '90'], message: /invalid --ttl "90": a duration needs a unit: 90s, 90m, 90h or 90d/ },
    // batch files from spreadsheets and other tools
    { name: 'semicolon-separated CSV', args: ['provision', '--batch', join(dir, 'semicolons.csv'), '--profile', 'sensor', '--json'], message: /batch CSV is separated by semicolons, not commas/ },
    { name: 'UTF-16 CSV', args: ['provision', '--batch', join(dir, 'utf16.csv'), '--profile', 'sensor', '--json'], message: /utf16\.csv is UTF-16 text .* not UTF-8/ },
    { name: 'UTF-16 CSV without a BOM', args: ['provision', '--batch', join(dir, 'utf16-nobom.csv'), '--profile', 'sensor', '--json'], message: /is UTF-16 text/ },
    { name: '.xlsx workbook', args: ['provision', '--batch', join(dir, 'devices.xlsx'), '--profile', 'sensor', '--json'], message: /devices\.xlsx is a ZIP archive \(an \.xlsx workbook\?\), not CSV: in the spreadsheet, save as "CSV UTF-8/ },
    { name: 'JSON array', args: ['provision', '--batch', join(dir, 'devices.json'), '--profile', 'sensor', '--json'], message: /devices\.json is a JSON array; a JSON batch is JSON lines, one object per line/ },
    { name: 'JSON array on stdin', args: ['provision', '--batch', '-', '--profile', 'sensor', '--json'], message: /\(standard input\) is a JSON array/ },
    { name: 'Latin-1 CSV', args: ['provision', '--batch', join(dir, 'latin1.csv'), '--profile', 'sensor', '--json'], message: /latin1\.csv is not UTF-8 text/ },
    { name: 'binary file', args: ['provision', '--batch', join(dir, 'binary.csv'), '--profile', 'sensor', '--json'], message: /binary\.csv is binary data, not a text file \(200 NUL bytes/ },
  ];
  await t.test('each case', async (t) => {
    t.jobs = 4;
    for (const c of cases) {
      t.test(c.name, async (t) => {
        const r = await runCli([...c.args, ...(c.args[0] === 'serve' ? [] : ['--db', db])], {
          cwd: dir, env: c.env, input: c.name.includes('stdin') ? '[{"id":"pump-1"}]\n' : undefined,
        });
        assertOneLine(t, r, c.code ?? 2, c.message);
        if (c.not) t.notMatch(r.stderr, c.not);
        if (c.args[0] !== 'serve') t.equal(r.stdout, '', 'nothing on stdout'); // a broker that got as far as binding has logged
      });
    }
  });

  t.test('durations: 1h30m is accepted, and printed back as written', async (t) => {
    const r = await runCli(['token', 'd-1', '--ttl', '1h30m', '--json', '--db', db]);
    t.equal(r.code, 0, r.stderr);
    const p = jwtPayload((JSON.parse(r.stdout) as { accessToken: string }).accessToken);
    t.equal((p.exp as number) - (p.iat as number), 5400, 'a 90-minute token');
    const set = await runCli(['profile', 'set', 'p90', '--pub', 'a/b', '--ttl', '1h30m', '--json', '--db', db]);
    t.equal(set.code, 0, set.stderr);
    t.equal((JSON.parse(set.stdout) as { tokenTtl: string }).tokenTtl, '1h30m');
    const day = await runCli(['profile', 'set', 'p24', '--pub', 'a/b', '--ttl', '24h', '--json', '--db', db]);
    t.equal((JSON.parse(day.stdout) as { tokenTtl: string }).tokenTtl, '24h', '24h stays 24h (not 1d)');
  });

  t.test('nothing was provisioned by the refused commands', async (t) => {
    const r = await runCli(['devices', '--json', '--db', db]);
    t.same((JSON.parse(r.stdout) as { id: string }[]).map((d) => d.id), ['d-1']);
  });
});

t.test('--out in a folder the user cannot write to', async (t) => {
  const dir = openTempDir(t);
  const db = await registryTargetIn(dir);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const locked = join(dir, 'locked');
  mkdirSync(locked, { mode: 0o555 });
  chmodSync(locked, 0o555);
  if (isRoot && localRegistryPath(db) !== null) chownSync(db, 65534, 65534); // a registry file must be the other user's to write
  if (isRoot) chownSync(dir, 65534, 65534);
  const r = await runCli(['provision', 'd-1', '--profile', 'sensor', '--out', join(locked, 'creds'), '--db', db], asOther);
  assertOneLine(t, r, 2, /cannot write to --out .*locked\/creds: permission denied \(EACCES\)/);
  const r2 = await runCli(['provision', 'd-1', '--profile', 'sensor', '--out', locked, '--db', db], asOther);
  assertOneLine(t, r2, 2, /cannot write to --out .*locked: permission denied/);
  const list = await runCli(['devices', '--json', '--db', db]);
  t.same(JSON.parse(list.stdout), [], 'nothing was provisioned');
});

t.test('a registry the user may only read: read-only commands work, writers get one line', async (t) => {
  const dir = openTempDir(t);
  const folder = join(dir, 'registry');
  const db = join(folder, 'registry.db'); // file permissions: SQLite's own case
  t.equal((await runCli(['init', '--db', db])).code, 0);
  t.equal((await runCli(['provision', 'd-1', '--profile', 'sensor', '--json', '--db', db])).code, 0);
  chmodSync(db, 0o444);
  if (isRoot) chownSync(folder, 65534, 65534); // the folder is the reader's, the file is not
  for (const args of [['devices'], ['show', 'd-1'], ['show', '--stats'], ['audit'], ['profile', 'list'], ['profile', 'show', 'sensor'], ['keys', 'list'], ['keys', 'jwks']]) {
    const r = await runCli([...args, '--db', db], asOther);
    t.equal(r.code, 0, `${args.join(' ')} reads a read-only registry: ${r.stderr}`);
    t.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr`);
  }
  const devices = await runCli(['devices', '--json', '--db', db], asOther);
  t.same((JSON.parse(devices.stdout) as { id: string }[]).map((d) => d.id), ['d-1']);
  for (const args of [['revoke', 'd-1'], ['token', 'd-1']]) {
    assertOneLine(t, await runCli([...args, '--db', db], asOther), 5, /cannot open registry .*registry\.db: EACCES|registry .*registry\.db cannot be written/);
  }

  // A read-only folder too: SQLite cannot create the -shm file a WAL reader needs. Said so, in one line.
  if (isRoot) chownSync(folder, 0, 0);
  for (const f of readdirSync(folder)) if (f !== 'registry.db') rmSync(join(folder, f)); // no -shm left by the reads above
  chmodSync(folder, 0o555);
  t.teardown(() => chmodSync(folder, 0o755));
  assertOneLine(t, await runCli(['devices', '--db', db], asOther), 5, /cannot be opened: its folder is read-only, and SQLite must create the registry's -shm file there/);
});
