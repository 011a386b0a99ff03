import { UsageError } from '../errors/index.js';
import { redactUrl } from '../util/redact-url.js';

/**
 * Where a registry lives, from `--db` / `CREDBROKER_DB`: a plain path or
 * `sqlite:PATH` is an SQLite file; `postgres://` (or `postgresql://`) is a
 * PostgreSQL database. Only `registry/` looks at the engine.
 */
export type RegistryTarget =
  | { readonly engine: 'sqlite'; readonly path: string }
  | { readonly engine: 'postgres'; readonly url: string };

const POSTGRES = /^postgres(ql)?:\/\//i;

/** @throws UsageError `ERR_USAGE` for an empty target or an unknown scheme. */
export function parseRegistryTarget(text: string): RegistryTarget {
  if (POSTGRES.test(text)) return { engine: 'postgres', url: text };
  let path = text;
  if (/^sqlite:/i.test(path)) {
    path = path.slice('sqlite:'.length);
    // sqlite:///abs/path and sqlite://rel/path read as the URL form; sqlite:rel/path as a plain one.
    if (path.startsWith('//')) path = path.slice(2);
  } else if (/^[a-z][a-z0-9+.-]+:\/\//i.test(path)) {
    throw new UsageError(`unsupported registry ${redactUrl(text)}: use a file path, sqlite:PATH or postgres://USER@HOST:PORT/DB`);
  }
  if (!path) throw new UsageError('the registry location is empty: use a file path, sqlite:PATH or postgres://USER@HOST:PORT/DB');
  return { engine: 'sqlite', path };
}

/** Default registry location; `--db` and `CREDBROKER_DB` override it. */
export function defaultDbPath(): string {
  return process.env.CREDBROKER_DB || './data/credbroker.db';
}

/** The file behind a registry target, or null when it is not a local file (a database server). */
export function localRegistryPath(text: string): string | null {
  const t = parseRegistryTarget(text);
  return t.engine === 'sqlite' ? t.path : null;
}

/** Removes passwords from anything that may show a connection string: the one redactor, util/redact-url.ts. */
export { redactUrl as redactSecrets } from '../util/redact-url.js';
