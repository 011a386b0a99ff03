/**
 * Shared pieces of the commands. The library (SQLite, jose, the CSV parser) is
 * loaded lazily inside each action, so `credbroker --help` and light commands
 * start fast: only what a command uses is imported.
 */
import { Option, type Command } from 'commander';
import { makeDirs } from '../util/make-dirs.js';
import type { Issuer } from '../provisioning/issuer.js';
import type { Registry } from '../registry/index.js';
import { localRegistryPath } from '../registry/location.js';
import { parseDeviceId, type DeviceId } from '../registry/ids.js';
import { parseDuration } from '../util/duration.js';
import { RegistryError, UsageError } from '../errors/index.js';
import { accessSync, constants, statSync } from 'node:fs';

export const DEFAULT_DB = './data/credbroker.db';

/** `--db FILE|URL` (env CREDBROKER_DB): every command takes it. */
export function addDbOption(cmd: Command): Command {
  return cmd.addOption(new Option('--db <file>', 'registry: a file (or sqlite:FILE), or a database: postgres://USER@HOST:PORT/DB').env('CREDBROKER_DB').default(DEFAULT_DB));
}

/** Adds a sub-command with the shared `--db` option. */
export function subcommand(parent: Command, nameAndArgs: string, description: string): Command {
  return addDbOption(parent.command(nameAndArgs).description(description));
}

/**
 * Refuses a registry file that does not exist yet: only `init` creates one (and
 * `serve` on the embedded default path), so that a mistyped --db can never start
 * a second, empty registry with its own signing key.
 * @throws RegistryError `ERR_REGISTRY`
 */
export function requireExistingRegistry(db: string): void {
  const file = localRegistryPath(db);
  if (file === null) return; // a database server: a mistyped URL finds no database to connect to
  let exists = false;
  try {
    exists = statSync(file).size > 0;
  } catch {
    exists = false;
  }
  if (!exists) {
    throw new RegistryError('ERR_REGISTRY', `no registry at ${db}: create it with "credbroker init", or point --db (or CREDBROKER_DB) at the registry file`);
  }
}

/**
 * Opens the existing registry (see `requireExistingRegistry`), runs `fn`, closes it
 * (also on error). Commands that only read pass `readonly`: they then work on a file
 * the operator may only read, and never write to it.
 */
export async function withRegistry<T>(db: string, fn: (reg: Registry) => T | Promise<T>, opts: { readonly?: boolean } = {}): Promise<T> {
  requireExistingRegistry(db);
  const { openRegistry } = await import('../registry/index.js');
  const reg = await openRegistry(db, { readonly: opts.readonly });
  try {
    return await fn(reg);
  } finally {
    await reg.close();
  }
}

/** Opens the existing registry with its signing keys (what minting needs), runs `fn`, closes it. */
export async function withIssuer<T>(db: string, fn: (issuer: Issuer) => T | Promise<T>): Promise<T> {
  requireExistingRegistry(db);
  const { openIssuer } = await import('../provisioning/issuer.js');
  const issuer = await openIssuer(db, {}, { mintFirstKey: false });
  try {
    return await fn(issuer);
  } finally {
    await issuer.reg.close();
  }
}

/**
 * Makes sure `--out DIR` can take credentials files before anything is issued: a file
 * in the way, or a folder without write permission, is a one-line usage error (exit 2)
 * instead of a failure half-way through. Creates the folder (0700) when missing.
 * @throws UsageError
 */
export function prepareOutDir(dir: string, flag = '--out'): void {
  try {
    makeDirs(dir);
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'EEXIST' });
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new UsageError(`${flag} ${dir} is a file, not a folder: give a folder for the credentials files`);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new UsageError(`cannot write to ${flag} ${dir}: permission denied (${code}); give a folder you can write to`);
    if (code === 'ENOENT') throw new UsageError(`cannot create ${flag} ${dir}: the file system refuses a folder there (ENOENT); give another folder`);
    throw new UsageError(`cannot use ${flag} ${dir}: ${code ?? (err as Error).message}`);
  }
}

/** Parses a duration option (`30s`, `15m`, `1h`, `7d`), naming the option in the error. */
export function durationOption(value: string | undefined, flag: string): number | undefined {
  return value === undefined ? undefined : parseDuration(value, flag);
}

/** Validates device ids given on the command line; refuses the same id twice. */
export function deviceIdArgs(ids: readonly string[]): DeviceId[] {
  const seen = new Set<string>();
  return ids.map((raw) => {
    const id = parseDeviceId(raw);
    if (seen.has(id)) throw new UsageError(`device id "${id}" is given twice`);
    seen.add(id);
    return id;
  });
}

/** Help text block: `Examples:` followed by indented command lines. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
}
