import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lines, runCli } from './helpers/cli.js';
import { registryTargetIn } from './helpers/backend.js';

// `npm start` on a fresh clone says what it is doing, builds only when a source changed,
// and explains `npm start --mqtt-port 1884` (npm keeps the flag) instead of "too many arguments".

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** A checkout with the sources (the console's too), scripts and the shared node_modules, never built. */
function checkout(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const include = (JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] }).include;
  for (const entry of [...include, 'console', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json']) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

t.test('ensure-build says it builds, then skips tsc until a source changes', async (t) => {
  t.setTimeout(600_000); // two full tsc runs on a loaded machine
  const dir = checkout(t);
  const build = () => spawnSync(process.execPath, ['scripts/ensure-build.mjs'], { cwd: dir, encoding: 'utf8', timeout: 280_000 });
  const first = build();
  t.equal(first.status, 0, `first build: ${first.stderr}`);
  t.same(lines(first.stderr), ['credbroker: building credbroker (first run, about 30 s)...']);
  const built = statSync(join(dir, 'dist', 'cli', 'main.js')).mtimeMs;

  const again = build();
  t.equal(again.status, 0);
  t.equal(again.stderr, '', 'nothing to say when nothing changed');
  t.equal(statSync(join(dir, 'dist', 'cli', 'main.js')).mtimeMs, built, 'and tsc did not run');

  const later = new Date(Date.now() + 5_000);
  utimesSync(join(dir, 'cli', 'main.ts'), later, later);
  const changed = build();
  t.equal(changed.status, 0, changed.stderr);
  t.match(lines(changed.stderr), [/^credbroker: building credbroker \(sources changed, about \d+ s\)\.\.\.$/]);
  t.not(statSync(join(dir, 'dist', 'cli', 'main.js')).mtimeMs, built, 'a changed source is rebuilt');
});

t.test('npm start --mqtt-port 1884: one line that says to put it after --', async (t) => {
  // What npm hands the start script for `npm start --mqtt-port 1884`: the flag as its own config, the value alone.
  const r = spawnSync(process.execPath, ['scripts/npm-start.mjs', '1884'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, npm_config_mqtt_port: 'true', NODE_OPTIONS: '' } });
  t.equal(r.status, 2, 'exit 2, as for bad usage');
  t.same(lines(r.stderr), ['credbroker: npm took --mqtt-port for itself: put serve\'s options after "--", as in: npm start -- --mqtt-port 1884']);
  t.equal(r.stdout, '');
  // `npm start --mqtt-port=1884` hands over the value in the variable.
  const eq = spawnSync(process.execPath, ['scripts/npm-start.mjs'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, npm_config_ws_port: '8084', NODE_OPTIONS: '' } });
  t.equal(eq.status, 2);
  t.same(lines(eq.stderr), ['credbroker: npm took --ws-port for itself: put serve\'s options after "--", as in: npm start -- --ws-port 8084']);
});

t.test('npm start -- --mqtt-port N serves on that port', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'npm-start.mjs'), '--db', db, '--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0'], { cwd: dir, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let err = '';
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 90_000);
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString('utf8');
      if (/broker ready — mqtt \d+/.test(err)) { clearTimeout(timer); resolve(true); }
    });
    void exited.then(() => { clearTimeout(timer); resolve(false); });
  });
  t.ok(ready, `serve started with the options given after --: ${err}`);
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'and stops cleanly on SIGTERM');
});
