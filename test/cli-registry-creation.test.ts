import t, { type Test } from 'tap';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lines, runCli, serveCli, type CliResult } from './helpers/cli.js';

// Only `init` creates a registry, and `serve` on the embedded default path with no
// --db given (so that `npm start` on a fresh checkout is the whole quick start).
// Every other command refuses a missing registry with one line naming `credbroker init`.

const NO_PORTS = ['--mqtt-port', '0', '--ws-port', 'off', '--http-port', 'off', '--host', '127.0.0.1'];

/** Every file and folder under `dir`, relative to it. */
function tree(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = join(prefix, e.name);
    return e.isDirectory() ? [rel, ...tree(join(dir, e.name), rel)] : [rel];
  });
}

function refusedMissing(t: Test, r: CliResult | { child: unknown }, what: string): void {
  if (!('code' in r)) {
    t.fail(`${what}: started a broker on a missing registry`);
    return;
  }
  t.equal(r.code, 5, `${what}: exit 5`);
  const errLines = lines(r.stderr);
  t.equal(errLines.length, 1, `${what}: one line: ${JSON.stringify(r.stderr)}`);
  t.match(errLines[0] ?? '', /^credbroker: no registry at .*typo.*: create it with "credbroker init"/, `${what}: names credbroker init`);
}

t.test('no command but init creates a registry from a mistyped --db', async (t) => {
  const dir = t.testdir({ 'batch.csv': 'id\nb-1\n', 'creds': {} });
  const typo = join(dir, 'typo', 'credbrokr.db');
  const before = tree(dir);
  const commands: string[][] = [
    ['provision', 'd-1', '--profile', 'sensor', '--out', join(dir, 'creds')],
    ['provision', '--batch', join(dir, 'batch.csv'), '--profile', 'sensor', '--out', join(dir, 'creds')],
    ['token', 'd-1'],
    ['revoke', 'd-1'],
    ['revoke', '--token', 'AAAAAAAAAAAAAAAAAAAAAA'],
    ['restore', 'd-1'],
    ['devices'],
    ['show', 'd-1'],
    ['show', '--stats'],
    ['profile', 'set', 'p1', '--pub', 'a/b'],
    ['profile', 'list'],
    ['profile', 'show', 'sensor'],
    ['keys', 'list'],
    ['keys', 'rotate'],
    ['keys', 'rotate', '--now'],
    ['keys', 'jwks'],
    ['cluster-key', 'list'],
    ['cluster-key', 'rotate'],
    ['audit'],
    ['sim', '--devices', '1', '--duration', '1s', '--url', 'mqtt://127.0.0.1:1'],
  ];
  await t.test('each command, --db', async (t) => {
    t.jobs = 4;
    for (const args of commands) {
      t.test(args.join(' '), async (t) => refusedMissing(t, await runCli([...args, '--db', typo]), args.join(' ')));
    }
  });
  t.test('serve --db', async (t) => refusedMissing(t, await serveCli([...NO_PORTS, '--db', typo]), 'serve --db'));
  t.test('serve with CREDBROKER_DB', async (t) => refusedMissing(t, await serveCli(NO_PORTS, { env: { CREDBROKER_DB: typo } }), 'serve (CREDBROKER_DB)'));
  t.test('serve with db in the config file', async (t) => {
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ db: typo }));
    before.push('config.json');
    refusedMissing(t, await serveCli([...NO_PORTS, '--config', config]), 'serve (config file)');
  });
  t.test('devices with CREDBROKER_DB', async (t) => refusedMissing(t, await runCli(['devices'], { env: { CREDBROKER_DB: typo } }), 'devices (CREDBROKER_DB)'));
  t.test('nothing was created', async (t) => {
    t.same(tree(dir).sort(), before.sort(), 'no file or folder appeared');
  });
  t.test('init creates it, then the others work', async (t) => {
    const init = await runCli(['init', '--db', typo]);
    t.equal(init.code, 0, init.stderr);
    t.ok(existsSync(typo), 'init created the registry (and its folder)');
    const devices = await runCli(['devices', '--db', typo]);
    t.equal(devices.code, 0, devices.stderr);
  });
});

t.test('the default path: serve creates ./data/credbroker.db and says what it serves', async (t) => {
  const cwd = t.testdir();
  t.same(await runCli(['devices'], { cwd }).then((r) => [r.code, existsSync(join(cwd, 'data'))]), [5, false], 'devices on the default path refuses too, creating nothing');
  const s = await serveCli(NO_PORTS, { cwd });
  if ('code' in s) {
    t.fail(`serve did not start: ${s.stderr}`);
    return;
  }
  const stderr = s.stderr();
  t.equal(await s.stop(), 0, 'stops cleanly on SIGTERM');
  const logs = `${s.stdout()}${stderr}`;
  t.ok(existsSync(join(cwd, 'data', 'credbroker.db')), 'the embedded default registry was created');
  t.match(stderr, /broker ready .* registry \.\/data\/credbroker\.db \(0 active and 0 revoked device\(s\), signing key [\w-]{20,}, issuer urn:credbroker\)/,
    'the ready line names the registry, device count, active key and issuer');
  t.match(logs, /"event":"broker\.started".*"db":"\.\/data\/credbroker\.db".*"devices":\{"active":0,"revoked":0\}.*"activeKid":"[\w-]{20,}".*"issuer":"urn:credbroker"/,
    'so does the broker.started log line');

  const provision = await runCli(['provision', 'd-1', '--profile', 'sensor', '--json'], { cwd });
  t.equal(provision.code, 0, provision.stderr);
  const again = await serveCli(NO_PORTS, { cwd });
  if ('code' in again) {
    t.fail(`serve did not start again: ${again.stderr}`);
    return;
  }
  t.match(again.stderr(), /\(1 active and 0 revoked device\(s\)/, 'the count is the registry\'s');
  t.equal(await again.stop(), 0);
});
