/**
 * The schema's versions, in order: one step per migration, which each engine
 * writes in its own SQL (registry/sqlite/migrations.ts, registry/postgres/migrations.ts).
 * Each engine's scripts are typed `MigrationScripts`, so a step added here does
 * not compile until both engines have it, and the version (the number of steps)
 * is the same for both, which `registry copy` relies on. Append only: a released
 * step is never edited or removed.
 */
export const MIGRATION_STEPS = ['tables', 'tokens-expiry-index', 'simulation-devices', 'token-families', 'claims', 'grants', 'operators'] as const;

export type MigrationStep = (typeof MIGRATION_STEPS)[number];
export type MigrationScripts = { readonly [S in MigrationStep]: string };

export const SCHEMA_VERSION = MIGRATION_STEPS.length;

/** An engine's scripts in step order: script `v` takes the schema from version `v` to `v + 1`. */
export const inOrder = (scripts: MigrationScripts): readonly string[] => MIGRATION_STEPS.map((s) => scripts[s]);
