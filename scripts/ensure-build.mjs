// Makes `npm test`, `npm start`, `npm run bench` and `npm run demo` work on a fresh clone:
// installs dependencies when node_modules is missing, then compiles TypeScript and the operator
// console, saying so first (a silent first start looked hung). It skips the build when no source
// changed since the last one: a stamp in dist/ records the sources' names, sizes and mtimes.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { join } from 'node:path';

const STAMP = 'dist/.build-stamp.json';
const say = (line) => process.stderr.write(`credbroker: ${line}\n`);
const run = (cmd) => execSync(cmd, { stdio: 'inherit' });

/** Every file tsc reads from this checkout (tsconfig's include folders) and what steers it. */
function fingerprint() {
  const { include } = JSON.parse(readFileSync('tsconfig.json', 'utf8'));
  const files = ['tsconfig.json', 'package-lock.json', 'scripts/build-console.mjs'];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else files.push(path);
    }
  };
  for (const dir of [...include, 'console']) if (existsSync(dir)) walk(dir);
  const hash = createHash('sha256');
  for (const file of files.sort()) {
    const s = existsSync(file) ? statSync(file) : { size: -1, mtimeMs: 0 };
    hash.update(`${file}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return hash.digest('hex');
}

function readStamp() {
  try {
    return JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return null;
  }
}

if (!existsSync('node_modules/.package-lock.json')) {
  say('installing dependencies (first run: npm ci, a few minutes)...');
  run('npm ci --no-audit --no-fund');
}
const now = fingerprint();
const stamp = readStamp();
if (stamp?.fingerprint !== now || !existsSync('dist/cli/main.js')) {
  say(stamp === null
    ? 'building credbroker (first run, about 30 s)...'
    : `building credbroker (sources changed, about ${Math.max(1, Math.round(stamp.seconds))} s)...`);
  const started = Date.now();
  run('npx tsc -p tsconfig.json');
  run('node scripts/build-console.mjs');
  writeFileSync(STAMP, `${JSON.stringify({ fingerprint: now, seconds: (Date.now() - started) / 1000 })}\n`);
}
