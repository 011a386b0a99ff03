import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localRegistryPath } from '../../registry/index.js';

/**
 * The registry engine a test run uses: `CREDBROKER_TEST_BACKEND=postgres` runs
 * the same test files against PostgreSQL (a throwaway cluster per test file,
 * test/helpers/postgres.ts); anything else against SQLite files. Tests that open
 * a registry get its location from `freshRegistryTarget` and never name an engine.
 */
export type TestBackend = 'sqlite' | 'postgres';
export const TEST_BACKEND: TestBackend = process.env.CREDBROKER_TEST_BACKEND === 'postgres' ? 'postgres' : 'sqlite';

interface Teardown { teardown(fn: () => void | Promise<void>): void }

/**
 * A new, empty registry location for one test: a file in a fresh temp folder
 * (removed at the test's end), or a new database on this file's cluster.
 */
export async function freshRegistryTarget(t: Teardown, name = 'registry.db'): Promise<string> {
  if (TEST_BACKEND === 'postgres') return newPostgresDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-reg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, name);
}

/** The registry location in a test's own folder: `dir/name`, or a new database on a postgres run. */
export async function registryTargetIn(dir: string, name = 'registry.db'): Promise<string> {
  return TEST_BACKEND === 'postgres' ? newPostgresDatabase() : join(dir, name);
}

/** Loaded only by a postgres run: a SQLite run never starts a cluster. */
async function newPostgresDatabase(): Promise<string> {
  const { sharedPostgres } = await import('./postgres.js');
  return (await sharedPostgres()).newDatabase();
}

/**
 * Runs one statement straight on a test registry, whichever engine holds it: for
 * what only time would do (ageing rows). `$1`-style parameters, used in order.
 */
export async function rawSql(target: string, sql: string, params: readonly unknown[] = []): Promise<void> {
  const file = localRegistryPath(target);
  if (file !== null) {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(file);
    try {
      db.pragma('busy_timeout = 10000');
      db.prepare(sql.replace(/\$\d+/g, '?')).run(...params);
    } finally {
      db.close();
    }
    return;
  }
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: target });
  await client.connect();
  try {
    await client.query(sql, [...params]);
  } finally {
    await client.end();
  }
}
