// The two engines' schemas are twins: a fresh SQLite registry and a fresh
// PostgreSQL one, each migrated to its latest version, have the same tables,
// columns (name, type family, nullability), primary keys and indexes (name,
// columns, uniqueness). What differs on purpose is listed below with its reason;
// anything else is a migration written for one engine only.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStores } from '../registry/sqlite/stores.js';
import { SCHEMA_VERSION } from '../registry/migration-plan.js';
import { engine as postgres } from '../registry/postgres/index.js';
import { sharedPostgres } from './helpers/postgres.js';

/** One table as both engines are read: sorted, so that two equal schemas print the same. */
interface Table {
  readonly columns: string[]; // `name family [not null]`
  readonly primaryKey: string[];
  readonly indexes: string[]; // `name (col, …) [unique]`
}
type Schema = Record<string, Table>;

/** Type families: what the registry's code relies on, not each engine's spelling. */
function family(declared: string): string {
  const d = declared.toLowerCase();
  if (/int/.test(d)) return 'integer';
  if (/char|text|clob/.test(d)) return 'text';
  if (d === 'boolean') return 'boolean';
  return `other:${d}`;
}

/**
 * The differences kept on purpose, as `table`, `table.column` or `table index` lines
 * present in one engine only (or with another family), each with its reason.
 */
const ONLY_SQLITE: Record<string, string> = {
  'devices.simulation integer not null': 'SQLite has no boolean type: flags are INTEGER 0/1 (rows.ts reads both)',
  'claims.has_allow_list integer not null': 'SQLite has no boolean type: flags are INTEGER 0/1',
  'claims.simulation integer not null': 'SQLite has no boolean type: flags are INTEGER 0/1',
};
const ONLY_POSTGRES: Record<string, string> = {
  'credbroker_schema': 'PostgreSQL keeps the schema version in a table; SQLite in PRAGMA user_version',
  'devices.simulation boolean not null': 'the twin of SQLite\'s INTEGER flag',
  'claims.has_allow_list boolean not null': 'the twin of SQLite\'s INTEGER flag',
  'claims.simulation boolean not null': 'the twin of SQLite\'s INTEGER flag',
  'refresh_credentials.n integer not null': 'the insertion order (newest first in forDevice): SQLite has its rowid',
  'changes index changes_at (at)': 'SQLite prunes the feed walking its rowid (seq), where the oldest rows come first; PostgreSQL needs the index for the same DELETE',
};

async function sqliteSchema(file: string): Promise<Schema & { version: number }> {
  const reg = SqliteStores.open(file);
  try {
    const { db } = reg;
    const version = db.pragma('user_version', { simple: true }) as number;
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
    const out: Schema = {};
    for (const table of tables) {
      const cols = db.prepare(`SELECT name, type, "notnull" AS nn, pk FROM pragma_table_info(?) ORDER BY cid`).all(table) as { name: string; type: string; nn: number; pk: number }[];
      const indexes = (db.prepare('SELECT name, "unique" AS u, origin FROM pragma_index_list(?)').all(table) as { name: string; u: number; origin: string }[])
        .filter((i) => i.origin !== 'pk')
        .map((i) => {
          const on = (db.prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno').pluck().all(i.name) as string[]).join(', ');
          // An inline UNIQUE constraint's index is named by SQLite: named here as PostgreSQL names it.
          const name = i.origin === 'u' ? `${table}_${on.replace(/, /g, '_')}_key` : i.name;
          return `${name} (${on})${i.u ? ' unique' : ''}`;
        });
      out[table] = {
        // A primary key column is never NULL in the model (SQLite alone would allow it in a TEXT key).
        columns: cols.map((c) => `${c.name} ${family(c.type)}${c.nn || c.pk ? ' not null' : ''}`).sort(),
        primaryKey: cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name),
        indexes: indexes.sort(),
      };
    }
    return Object.assign(out, { version });
  } finally {
    reg.close();
  }
}

async function postgresSchema(admin: (sql: string, params?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>): Promise<Schema> {
  const tables = (await admin("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1")).rows.map((r) => r.name as string);
  const out: Schema = {};
  for (const table of tables) {
    const cols = (await admin(
      "SELECT column_name AS name, data_type AS type, is_nullable = 'NO' AS nn FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1", [table])).rows;
    const idx = (await admin(
      `SELECT c.relname AS name, i.indisunique AS u, i.indisprimary AS pk,
              array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS cols
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class tb ON tb.oid = i.indrelid JOIN pg_namespace n ON n.oid = tb.relnamespace
        WHERE n.nspname = 'public' AND tb.relname = $1`, [table])).rows as { name: string; u: boolean; pk: boolean; cols: string[] }[];
    out[table] = {
      columns: cols.map((c) => `${c.name as string} ${family(c.type as string)}${c.nn ? ' not null' : ''}`).sort(),
      primaryKey: idx.find((i) => i.pk)?.cols ?? [],
      indexes: idx.filter((i) => !i.pk).map((i) => `${i.name} (${i.cols.join(', ')})${i.u ? ' unique' : ''}`).sort(),
    };
  }
  return out;
}

const tableOf = (line: string) => line.split(/[. ]/)[0]!;

/** The schema as lines: `table`, `table.column family…`, `table pk (…)`, `table index …`. */
function lines(schema: Schema): Set<string> {
  const out = new Set<string>();
  for (const [table, def] of Object.entries(schema)) {
    out.add(table);
    for (const c of def.columns) out.add(`${table}.${c}`);
    out.add(`${table} pk (${def.primaryKey.join(', ')})`);
    for (const i of def.indexes) out.add(`${table} index ${i}`);
  }
  return out;
}

t.test('a fresh SQLite registry and a fresh PostgreSQL one have the same schema, but for the listed differences', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-twins-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pg = await sharedPostgres();
  const url = await pg.newDatabase();
  await (await postgres.open(url, {})).close();
  const database = url.split('/').pop()!;

  const { version, ...sqlite } = await sqliteSchema(join(dir, 'registry.db'));
  t.equal(version, SCHEMA_VERSION, 'SQLite ran every step of the plan');
  const [pgVersion] = (await pg.admin(database, 'SELECT version FROM credbroker_schema')).rows;
  t.equal(pgVersion?.version, SCHEMA_VERSION, 'PostgreSQL ran every step of the plan');
  const lite = lines(sqlite as Schema);
  const post = lines(await postgresSchema((sql, params) => pg.admin(database, sql, params)));
  t.ok(lite.has('devices') && lite.has('tokens index tokens_family (family, expires_at)'), 'the SQLite schema was read');
  t.ok(post.has('devices') && post.has('tokens index tokens_family (family, expires_at)'), 'the PostgreSQL schema was read');

  // A table in one engine only is one difference, not one per column.
  const only = (mine: Set<string>, theirs: Set<string>) => [...mine].filter((l) => !theirs.has(l) && (l === tableOf(l) || theirs.has(tableOf(l)))).sort();
  const onlyLite = only(lite, post);
  const onlyPost = only(post, lite);
  t.same(onlyLite, Object.keys(ONLY_SQLITE).sort(), 'in SQLite only: the listed differences, nothing else');
  t.same(onlyPost, Object.keys(ONLY_POSTGRES).sort(), 'in PostgreSQL only: the listed differences, nothing else');
});
