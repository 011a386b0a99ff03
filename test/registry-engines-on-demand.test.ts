// Each engine's driver is loaded by that engine only, when asked for: the CLI
// (the whole import graph above registry/) runs on PostgreSQL with
// better-sqlite3 made unloadable, and on SQLite with pg made unloadable.
// (`init`, then `profile list`: a write path and a read path.)
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_PATH } from './helpers/cli.js';
import { sharedPostgres } from './helpers/postgres.js';

/** A module for `--import` that makes `driver` fail to resolve, naming it. */
function forbidding(driver: string): string {
  const hook = `export async function resolve(s, c, next) { if (s === ${JSON.stringify(driver)}) throw new Error('the driver ' + s + ' was loaded'); return next(s, c); }`;
  const registrar = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
  return `data:text/javascript,${encodeURIComponent(registrar)}`;
}

function cliWithout(driver: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', forbidding(driver), CLI_PATH, ...args], { env: { PATH: process.env.PATH }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

t.test('the hook does refuse a driver (else the checks below prove nothing)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-engines-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await cliWithout('better-sqlite3', ['init', '--db', join(dir, 'registry.db')]);
  t.not(r.code, 0);
  t.match(r.stderr, /the driver better-sqlite3 was loaded/);
});

t.test('an SQLite registry never loads pg', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-engines-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'registry.db');
  const init = await cliWithout('pg', ['init', '--db', db]);
  t.equal(init.code, 0, init.stderr);
  const r = await cliWithout('pg', ['profile', 'list', '--db', db]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /sensor/);
});

t.test('a PostgreSQL registry never loads better-sqlite3', async (t) => {
  const pg = await sharedPostgres();
  const url = await pg.newDatabase();
  const init = await cliWithout('better-sqlite3', ['init', '--db', url]);
  t.equal(init.code, 0, init.stderr);
  const r = await cliWithout('better-sqlite3', ['profile', 'list', '--db', url]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /sensor/);
  t.notMatch(r.stdout + r.stderr, pg.password);
});
