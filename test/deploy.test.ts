import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../broker/config.js';
import { connect } from './helpers/broker.js';
import { lines, runCli, serveCli } from './helpers/cli.js';
import { registryTargetIn } from './helpers/backend.js';

// Deployment and first contact: what a new operator reads and runs first.

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const read = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');

t.test('README: protocol, listen addresses, prerequisites, the TLS step, the contract', async (t) => {
  const readme = read('README.md');
  t.match(readme, /MQTT 3\.1\.1/, 'states the MQTT version');
  t.match(readme, /0\.0\.0\.0.*1883|1883.*0\.0\.0\.0/s, 'states the default MQTT listen address');
  t.match(readme, /127\.0\.0\.1.*9100|9100.*127\.0\.0\.1/s, 'states the default ops HTTP listen address');
  t.match(readme, /--host ::/, 'says how to listen on IPv6 too');
  t.match(readme, /Node\.js 20/, 'prerequisite: Node 20');
  t.match(readme, /python3.*make.*g\+\+/s, 'prerequisite: the build tools of better-sqlite3');
  t.match(readme, /stop the first one[\s\S]*other\s+ports/, 'the TLS step says what to do with the broker already running');
  for (const doc of ['README.md', 'provisioning.md']) {
    t.notMatch(read(doc), /handed to the team|SPEC\.md/, `${doc} points at no document the user does not have`);
  }
});

t.test('the documents: every relative link resolves, and they speak to users', async (t) => {
  const docs = ['README.md', 'provisioning.md', 'certs/README.md',
    ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  for (const doc of docs) {
    const text = read(doc);
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(https?:|mailto:|#)/.test(target!)) continue;
      const file = target!.replace(/#.*$/, '');
      t.ok(existsSync(join(ROOT, dirname(doc), file)), `${doc}: link ${target} resolves`);
    }
    t.notMatch(text, /\bissue #?\d+|\bbench row \d|\brow \d+b?\b|other engineers|the other engineers/i,
      `${doc} speaks of the product, not of how it was built`);
  }
});

t.test('LICENSE matches package.json', async (t) => {
  const pkg = JSON.parse(read('package.json')) as { license: string };
  t.equal(pkg.license, 'MIT');
  const license = read('LICENSE');
  t.match(license, /^MIT License/, 'LICENSE is the MIT license');
  t.match(license, /Permission is hereby granted, free of charge/);
});

t.test('the example config file is valid', async (t) => {
  const path = join(ROOT, 'deploy', 'credbroker.example.json');
  const config = loadConfig({ config: path }, {});
  t.equal(config.db, '/var/lib/credbroker/credbroker.db', 'the registry in the state folder of the systemd unit');
  t.equal(config.tlsPort, 8883);
  t.equal(config.httpHost, '127.0.0.1', 'ops HTTP stays on loopback');
  const keys = Object.keys(JSON.parse(readFileSync(path, 'utf8')) as object);
  t.ok(keys.length >= 8, 'it shows the settings an operator sets first');
});

t.test('the systemd unit', async (t) => {
  const unitPath = join(ROOT, 'deploy', 'credbroker.service');
  const unit = readFileSync(unitPath, 'utf8');
  const directives = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) directives.set(m[1]!, [...(directives.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string) => directives.get(k)?.[0];
  t.equal(one('User'), 'credbroker', 'runs as its own user');
  t.equal(one('StateDirectory'), 'credbroker', 'with a state directory (/var/lib/credbroker)');
  t.equal(one('StateDirectoryMode'), '0700', 'that only it can read: the registry holds the signing keys');
  t.equal(one('Restart'), 'on-failure', 'restarts on failure');
  t.equal(one('NoNewPrivileges'), 'yes');
  t.equal(one('ProtectSystem'), 'strict');
  t.equal(one('CapabilityBoundingSet'), '', 'no capabilities');
  t.notOk(directives.has('MemoryDenyWriteExecute'), 'not MemoryDenyWriteExecute: V8 would not start');
  t.match(one('ExecStart') ?? '', / serve --config \/etc\/credbroker\/credbroker\.json$/);
  t.match(read('deploy/credbroker.sysusers.conf'), /^u credbroker /m, 'a sysusers.d entry makes the user');

  const missing = spawnSync('systemd-analyze', ['--version']).error
    ? 'systemd-analyze is not installed on this host: the unit was NOT checked with "systemd-analyze verify" (.ci/run installs the systemd package for it)'
    : false;
  await t.test('systemd-analyze verify', { skip: missing }, async (t) => {
    // verify checks that ExecStart's program exists: where node is not /usr/bin/node, this host's node stands in.
    let checked = unitPath;
    if (!existsSync('/usr/bin/node')) {
      checked = join(t.testdir(), 'credbroker.service');
      writeFileSync(checked, unit.replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `));
      t.comment(`/usr/bin/node is not on this host: verifying a copy with ExecStart=${process.execPath}`);
    }
    const r = spawnSync('systemd-analyze', ['verify', checked], { encoding: 'utf8' });
    t.equal(r.status, 0, `systemd-analyze verify exits 0: ${r.stderr}`);
    t.equal(r.stderr.trim(), '', 'and warns about nothing (unknown or misspelled directives are only warnings)');
  });
});

t.test('serve --help shows the registry default', async (t) => {
  const r = await runCli(['serve', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /--db <file>[\s\S]*default\s+\.\/data\/credbroker\.db/);
});

/** Holds a loopback port until the test ends. */
async function holdPort(t: Test): Promise<number> {
  const s: Server = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  return (s.address() as AddressInfo).port;
}

t.test('ports in use: every conflict at once, each with its flag', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const [a, b] = [await holdPort(t), await holdPort(t)];
  const r = await serveCli(['--host', '127.0.0.1', '--mqtt-port', String(a), '--ws-port', String(b), '--http-port', '0', '--db', db]);
  if (!('code' in r)) {
    await r.stop();
    t.fail('started on ports in use');
    return;
  }
  t.equal(r.code, 2, 'exit 2');
  const err = lines(r.stderr).filter((l) => l.startsWith('credbroker:'));
  t.equal(err.length, 1, `one line: ${r.stderr}`);
  t.match(err[0] ?? '', new RegExp(`ports already in use: MQTT ${a} on 127\\.0\\.0\\.1 \\(--mqtt-port\\), WebSocket ${b} on 127\\.0\\.0\\.1 \\(--ws-port\\); is another broker running\\? Stop it, or choose other ports`));
  t.notMatch(r.stderr, /unexpected error/);
});

t.test('--host :: serves IPv6 and IPv4 on one listener', async (t) => {
  const probe = spawnSync(process.execPath, ['-e', "require('net').createServer().listen(0, '::1', function () { this.close(); }).on('error', () => process.exit(3))"]);
  if (probe.status !== 0) {
    t.fail('this host has no IPv6 loopback (::1): --host :: (dual-stack) could NOT be tested here');
    return;
  }
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const prov = await runCli(['provision', 'pump-6', '--profile', 'sensor', '--json', '--db', db]);
  t.equal(prov.code, 0, prov.stderr);
  const creds = (JSON.parse(prov.stdout) as { accessToken: string }[])[0]!;
  const s = await serveCli(['--host', '::', '--mqtt-port', '0', '--ws-port', 'off', '--http-port', 'off', '--db', db]);
  if ('code' in s) {
    t.fail(`serve --host :: did not start: ${s.stderr}`);
    return;
  }
  t.teardown(() => s.stop());
  const port = Number(/mqtt (\d+)/.exec(s.stderr())?.[1]);
  t.ok(port > 0, `bound port ${port}`);
  for (const url of [`mqtt://127.0.0.1:${port}`, `mqtt://[::1]:${port}`]) {
    const c = await connect(url, { clientId: 'pump-6', username: 'pump-6', password: creds.accessToken });
    t.equal(c.code, 0, `CONNACK 0 over ${url}`);
    c.client?.end(true);
  }
  t.equal(await s.stop(), 0);
  t.match(s.stdout() + s.stderr(), /"event":"broker\.started".*"host":"::"/, 'the start log names the address');
});
