// The third-party programs the tests drive (Debian packages), installed when missing,
// so that `npm test` on a fresh machine runs every test instead of skipping some.
// Used by `npm test` and `.ci/run`: one list. Where nothing can be installed (not root,
// no apt-get, no network), it says which tests will skip and why, and goes on (`.ci/run`
// then counts each skip as a failure).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

// A program is there when it can be started at all (some print their usage with exit 1).
const runs = (cmd, args) => !spawnSync(cmd, args, { stdio: 'ignore' }).error;
// Debian's postgresql keeps initdb/pg_ctl out of PATH, under /usr/lib/postgresql/<major>/bin.
const hasPostgres = () => existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`));
// [Debian package, is it usable?, what needs it]
const tools = [
  ['mosquitto-clients', () => runs('mosquitto_pub', ['--help']), 'interop tests (mosquitto_pub/_sub)'],
  ['mosquitto', () => runs('mosquitto', ['-h']), 'the Mosquitto baseline in npm run bench'],
  ['openssl', () => runs('openssl', ['version']), 'TLS tests (development CA)'],
  ['python3', () => runs('python3', ['--version']), 'the Eclipse Paho interoperability suite (test/vendor/paho-interop)'],
  ['python3-paho-mqtt', () => spawnSync('/usr/bin/python3', ['-c', 'import paho.mqtt.client'], { stdio: 'ignore' }).status === 0, 'interop test with Python paho-mqtt'],
  ['strace', () => runs('strace', ['-V']), 'the revocation fsync test'],
  ['redis-server', () => runs('redis-server', ['--version']), 'the Redis bus tests (serve --workers/--bus) and the cluster bench'],
  ['postgresql', hasPostgres, 'the PostgreSQL registry tests and bench'],
  ['systemd', () => runs('systemd-analyze', ['--version']), 'systemd-analyze verify of deploy/credbroker.service'],
  ['chromium', () => runs('chromium', ['--version']), 'the operator console\'s browser tests (headless, driven by playwright-core)'],
];

const missing = tools.filter(([, ok]) => !ok());
if (missing.length > 0) {
  const names = missing.map(([pkg]) => pkg);
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const canApt = root && runs('apt-get', ['--version']);
  if (canApt) {
    process.stderr.write(`installing test tools: ${names.join(' ')}\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    // apt's own words reach the reader when a step fails: a silent failure would only show later as skips.
    for (const args of [['update', '-qq'], ['install', '-y', '-qq', ...names]]) {
      const r = spawnSync('apt-get', args, { encoding: 'utf8', env });
      if (r.status !== 0) process.stderr.write(`apt-get ${args[0]} failed (exit ${r.status ?? r.signal}):\n${(r.stderr || r.stdout || '').trim()}\n`);
    }
  }
  for (const [pkg, ok, what] of missing) {
    if (!ok()) process.stderr.write(`warning: ${pkg} is not installed${canApt ? ' (apt-get failed)' : ' (run as root, or: apt-get install ' + pkg + ')'}: ${what} will be skipped and say so\n`);
  }
}
