import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectDevice, subscribeGranted } from './helpers/broker.js';
import { sharedPostgres } from './helpers/postgres.js';
import { until, within } from './helpers/wait.js';

// The package without a checkout: `npm pack` (its prepack builds dist/) in a copy of the
// sources that was never built, `npm install -g` of the tarball into a temporary prefix
// with the npm registry as the only source, then the quick start with the installed
// `credbroker` only, on SQLite and on PostgreSQL, and the device library imported as
// `credbroker/device` by a TypeScript program. One install serves every step.

t.setTimeout(2_700_000); // a full tsc build and a native build of better-sqlite3: 25 minutes were seen on a 2-core box at load 35

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const work = mkdtempSync(join(tmpdir(), 'credbroker-package-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const prefix = join(work, 'prefix');
const BIN = join(prefix, 'bin', 'credbroker');

/** The working tree's files but test/, without dist/: what a checkout holds before its first build. */
function unbuiltCheckout(): string {
  const dir = join(work, 'checkout');
  const ls = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  for (const f of ls.stdout.split('\0')) {
    if (!f || f.startsWith('test/') || f === 'node_modules' || !existsSync(join(ROOT, f))) continue;
    cpSync(join(ROOT, f), join(dir, f), { recursive: true });
  }
  // The build tools (tsc) for prepack; the installed package never sees them.
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

/**
 * better-sqlite3's install script (prebuild-install) downloads a prebuilt binary from GitHub,
 * which this loopback-only machine cannot reach, and would then compile SQLite for minutes.
 * What it would download is offered locally instead: the binary this checkout's own install
 * built, for this Node and platform, in prebuild-install's file layout. The install script still
 * runs and must be approved; only where the binary comes from changes.
 */
function localPrebuilds(): string {
  const dir = join(work, 'prebuilds');
  mkdirSync(dir);
  const pkg = join(ROOT, 'node_modules', 'better-sqlite3');
  const { version } = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { version: string };
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const tar = spawnSync('tar', ['-czf', join(dir, name), '-C', pkg, 'build/Release/better_sqlite3.node'], { encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`tar of better-sqlite3's binary: ${tar.stderr}`);
  return dir;
}
const PREBUILDS = localPrebuilds();

function sh(cmd: string, args: readonly string[], cwd: string, timeoutMs = 120_000) {
  // JOBS: were the binary ever compiled after all, node-gyp compiles its two sources in parallel.
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, JOBS: 'max', npm_config_better_sqlite3_local_prebuilds: PREBUILDS } });
}

/** What a failed step said, for its assertion's message. */
const said = (r: { status: number | null; signal: NodeJS.Signals | null; stderr: string }) => (r.status === 0 ? '' : ` (exit ${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);

t.test('npm pack, npm install -g, and the quick start from the installed package', async (t) => {
  const checkout = unbuiltCheckout();
  const pack = sh('npm', ['pack', '--json', '--pack-destination', work], checkout, 600_000);
  t.equal(pack.status, 0, `npm pack: exit 0${said(pack)}`);
  if (pack.status !== 0) return;
  // prepack's own output (npm run build) comes before the JSON.
  const json = pack.stdout.slice(pack.stdout.search(/^\[/m));
  const [packed] = JSON.parse(json) as { filename: string; files: { path: string }[] }[];
  const files = packed!.files.map((f) => f.path).sort();
  t.comment(`${packed!.filename}: ${files.length} files\n${files.join('\n')}`);
  t.ok(existsSync(join(checkout, 'dist', 'cli', 'main.js')), 'prepack built dist/');
  for (const f of ['bin/credbroker.js', 'dist/cli/main.js', 'dist/device/index.js', 'dist/device/index.d.ts', 'package.json', 'README.md', 'LICENSE', 'provisioning.md', 'certs/README.md']) {
    t.ok(files.includes(f), `ships ${f}`);
  }
  const unwanted = files.filter((f) => /^(test|src|bench|\.cache|node_modules|dist\/bench|dist\/test)\//.test(f) || f.endsWith('.map') || (f.endsWith('.ts') && !f.endsWith('.d.ts')));
  t.same(unwanted, [], 'no tests, bench, sources or source maps');

  const install = sh('npm', ['install', '--global', '--prefix', prefix, '--allow-scripts=better-sqlite3', '--no-audit', '--no-fund', join(work, packed!.filename)], work, 2_100_000);
  t.equal(install.status, 0, `npm install -g: exit 0${said(install)}`);
  if (install.status !== 0) return;
  // The tarball's own postinstall (while it has one) is matched by its file: identity, not by
  // name, so npm lists it; what the flag must cover is better-sqlite3's native build.
  t.notMatch(install.stderr, /install-scripts\s+better-sqlite3@/, 'better-sqlite3\'s install script approved');

  const bs3 = join(prefix, 'lib', 'node_modules', 'credbroker', 'node_modules', 'better-sqlite3', 'build');
  t.comment(`better-sqlite3: ${existsSync(join(bs3, 'Release', 'obj.target')) ? 'compiled from source' : 'the prebuilt binary'}`);

  const version = sh(BIN, ['--version'], work);
  t.equal(version.stdout?.trim(), VERSION, 'credbroker --version');

  await t.test('SQLite: the quick start as printed, in an empty folder', async (t) => {
    const dir = join(work, 'sqlite');
    mkdirSync(dir);
    await quickStart(t, dir, [], async (broker) => {
      await deviceLibrary(t, join(dir, 'creds', 'pump-0001.json'), broker);
    });
  });

  await t.test('PostgreSQL: the same with --db postgres://', async (t) => {
    const dir = join(work, 'postgres');
    mkdirSync(dir);
    const db = await (await sharedPostgres()).newDatabase();
    await quickStart(t, dir, ['--db', db], async () => {});
  });
});

interface Broker { readonly received: () => string[] }

/**
 * init, serve on ephemeral ports, provision, an MQTT.js publish with the device's token that an
 * observer receives, and a short `sim`; `more` runs while the broker is up.
 */
async function quickStart(t: Test, dir: string, db: string[], more: (b: Broker) => Promise<void>): Promise<void> {
  const init = sh(BIN, ['init', ...db], dir);
  t.equal(init.status, 0, `init: exit 0${said(init)}`);
  t.match(init.stdout, /^created registry /, 'init created the registry');

  const serve = spawn(BIN, ['serve', ...db, '--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => stop(serve));
  const ports = await within('serve to be ready', readyPorts(serve), 90_000);
  const mqttUrl = `mqtt://127.0.0.1:${ports.mqtt}`;

  const provision = sh(BIN, ['provision', 'pump-0001', '--profile', 'sensor', '--out', './creds', '--broker-url', mqttUrl, ...db], dir);
  t.equal(provision.status, 0, `provision: exit 0${said(provision)}`);
  const credsFile = join(dir, 'creds', 'pump-0001.json');
  t.equal(statSync(credsFile).mode & 0o777, 0o600, 'credentials file 0600');
  const creds = JSON.parse(readFileSync(credsFile, 'utf8')) as { deviceId: string; accessToken: string };
  const obs = sh(BIN, ['provision', 'obs-1', '--profile', 'observer', '--json', ...db], dir);
  t.equal(obs.status, 0, `provision observer: exit 0${said(obs)}`);
  const [observerCreds] = JSON.parse(obs.stdout) as { deviceId: string; accessToken: string }[];

  const observer = (await connectDevice(mqttUrl, observerCreds!)).client!;
  t.teardown(() => observer.end(true));
  const received: string[] = [];
  observer.on('message', (_topic, payload) => received.push(payload.toString()));
  t.equal(await subscribeGranted(observer, 'devices/pump-0001/telemetry'), 1, 'observer subscribed');

  const device = await connectDevice(mqttUrl, creds);
  t.equal(device.code, 0, 'MQTT.js CONNECT with the token: accepted');
  await new Promise<void>((resolve, reject) => device.client!.publish('devices/pump-0001/telemetry', '{"t":21.5}', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
  await until('the observer to receive the publish', () => received.includes('{"t":21.5}'));
  t.pass('the publish was accepted and delivered');
  await new Promise<void>((resolve) => device.client!.end(false, {}, () => resolve()));

  await more({ received: () => received });

  const sim = sh(BIN, ['sim', '--url', mqttUrl, '--broker', `http://127.0.0.1:${ports.http}`, ...db, '--devices', '5', '--duration', '3s',
    '--offline-fraction', '0', '--revoke-fraction', '0', '--probe-fraction', '0', '--non-renewing-fraction', '0'], dir, 300_000);
  t.equal(sim.status, 0, `sim: exit 0${said(sim)}`);
  t.match(sim.stdout + sim.stderr, /^RESULT: PASS$/m, 'sim: RESULT: PASS');

  t.equal(await stop(serve), 0, 'serve stopped cleanly on SIGTERM');
}

/**
 * A TypeScript program that imports `credbroker/device`: tsc checks it against the package's
 * declaration files (a wrong call marked @ts-expect-error proves the types are not `any`),
 * then it runs, connects with the credentials file and publishes; the observer receives it.
 */
async function deviceLibrary(t: Test, credsFile: string, b: Broker): Promise<void> {
  const app = join(work, 'app');
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  // What `npm link credbroker` does: the installed package in the program's node_modules.
  symlinkSync(join(prefix, 'lib', 'node_modules', 'credbroker'), join(app, 'node_modules', 'credbroker'));
  writeFileSync(join(app, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, skipLibCheck: false, outDir: 'out',
      types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')],
    },
    files: ['app.ts'],
  }));
  writeFileSync(join(app, 'app.ts'), `import { DeviceClient, DeviceError, type RenewedEvent } from 'credbroker/device';

const device: DeviceClient = await DeviceClient.fromFile(process.argv[2]!);
device.on('renewed', (ev: RenewedEvent) => console.log('renewed until', ev.expiresAt));
// Never called: tsc must refuse it, or the declarations would be \`any\`.
// @ts-expect-error a topic is a string
const wrong = () => device.publish(42, 'x');
void wrong;
try {
  await device.start();
  await device.publish(\`devices/\${device.deviceId}/telemetry\`, JSON.stringify({ from: 'credbroker/device' }), { qos: 1 });
} catch (err) {
  console.error(err instanceof DeviceError ? \`\${err.code}: \${err.message}\` : err);
  process.exitCode = 1;
} finally {
  await device.stop();
}
`);
  const tsc = sh(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app, 300_000);
  t.equal(tsc.status, 0, `tsc type-checks a program against credbroker/device${tsc.status === 0 ? '' : `: ${tsc.stdout}${tsc.stderr}`}`);
  const run = sh(process.execPath, ['out/app.js', credsFile], app, 60_000);
  t.equal(run.status, 0, `the program ran${said(run)}`);
  await until('the observer to receive the device library’s publish', () => b.received().includes('{"from":"credbroker/device"}'));
  t.pass('DeviceClient from credbroker/device connected and published');

  const deep = sh(process.execPath, ['--input-type=module', '-e', "import('credbroker/dist/broker/index.js').catch((e) => console.log(e.code))"], app);
  t.equal(deep.stdout.trim(), 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'only what exports lists is importable');
}

/** The ports from "credbroker: broker ready — mqtt N, tls off, ws W, http H; ..." on stderr. */
function readyPorts(child: ChildProcess): Promise<{ mqtt: number; http: number }> {
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d;
      const m = /broker ready — mqtt (\d+), tls \S+, ws \d+, http (\d+)/.exec(err);
      if (m) resolve({ mqtt: Number(m[1]), http: Number(m[2]) });
    });
    child.once('exit', (code) => reject(new Error(`serve exited (${code}) before it was ready: ${err}`)));
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return exited.finally(() => clearTimeout(timer));
}
