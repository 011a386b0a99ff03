import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lines } from './helpers/cli.js';

// `npx credbroker` in a checkout that was never built: it compiles dist/ and runs,
// or (without the build tools) says what to run. Never "credbroker: not found".

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * A checkout without dist/: the sources the build reads, package.json, tsconfig.json, bin/ and
 * scripts/ (npx installs the checkout into its cache, which runs its postinstall).
 * Outside this repository, where no parent folder holds a node_modules.
 */
function unbuiltCheckout(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-checkout-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const include = (JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] }).include;
  for (const entry of [...include, 'bin', 'scripts', 'package.json', 'tsconfig.json']) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  return dir;
}

t.test('without the build tools installed: one line saying what to run', async (t) => {
  const dir = unbuiltCheckout(t);
  const r = spawnSync(process.execPath, [join(dir, 'bin', 'credbroker.js'), '--version'], { cwd: dir, encoding: 'utf8' });
  t.equal(r.status, 2, 'exit 2');
  t.same(lines(r.stderr), [`credbroker: not built yet, and the build tools are not installed: run "npm ci && npm run build" in ${dir}/ (or "npm start", which does both)`]);
  t.notOk(existsSync(join(dir, 'dist')));
});

t.test('npx credbroker before a build compiles dist/, then runs', async (t) => {
  t.setTimeout(280_000); // one full tsc run on a loaded machine
  const dir = unbuiltCheckout(t);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const npx = spawnSync('npx', ['--offline', 'credbroker', '--version'], { cwd: dir, encoding: 'utf8', timeout: 270_000 });
  t.equal(npx.status, 0, `exit 0: ${npx.stderr}`);
  t.equal(npx.stdout.trim(), version, 'the CLI ran');
  t.match(npx.stderr, /credbroker: first run in this checkout: compiling TypeScript into dist\/ \(npm run build\)/, 'and said why it took a while');
  t.ok(existsSync(join(dir, 'dist', 'cli', 'main.js')), 'dist/ was built');
  const again = spawnSync('npx', ['--offline', 'credbroker', '--version'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  t.equal(again.stdout.trim(), version);
  t.equal(again.stderr, '', 'no build the second time');
});
