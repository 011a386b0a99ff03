#!/usr/bin/env node
// `npm run test:postgres`: every test file (tap's include: test/**/*.test.ts)
// again with CREDBROKER_TEST_BACKEND=postgres (test/helpers/backend.ts), except
// those test/sqlite-only.txt lists with their reason. A new test file runs on
// both engines unless it is listed. Arguments are passed on to tap (`-R tap`).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const listFile = join(root, 'test', 'sqlite-only.txt');

// "test/x.test.ts  reason" per line; blank lines and # comments ignored.
const listed = new Map();
for (const [i, raw] of readFileSync(listFile, 'utf8').split('\n').entries()) {
  const line = raw.replace(/#.*/, '').trim();
  if (!line) continue;
  const [file, ...why] = line.split(/\s+/);
  // A stale or reasonless entry would hide a file from PostgreSQL without saying why.
  if (!existsSync(join(root, file))) fail(`${listFile}:${i + 1}: no such test file ${file}`);
  if (!why.length) fail(`${listFile}:${i + 1}: ${file} needs a reason`);
  listed.set(file, why.join(' '));
}

const files = readdirSync(join(root, 'test'), { recursive: true })
  .map((f) => join('test', String(f)))
  .filter((f) => f.endsWith('.test.ts') && !listed.has(f))
  .sort();

const tap = join(root, 'node_modules', '.bin', 'tap');
const run = spawnSync(tap, [...files, ...process.argv.slice(2)], {
  cwd: root, stdio: 'inherit', env: { ...process.env, CREDBROKER_TEST_BACKEND: 'postgres' },
});
process.exit(run.status ?? 1);

function fail(message) {
  console.error(`test-postgres: ${message}`);
  process.exit(2);
}
