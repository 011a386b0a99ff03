import { renameSync, rmSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import { examples, requireExistingRegistry } from '../common.js';
import { count, note, out, printJson, printTable } from '../output.js';
import type { CopyCounts } from '../../operations/registry-copy.js';

interface CopyOpts { from: string; to: string; json?: boolean }

export function registerRegistry(program: Command): void {
  const cmd = program.command('registry').description('the registry as a whole: move it between a SQLite file and PostgreSQL');
  cmd.command('copy')
    .description('copy a whole registry into a new, empty one (SQLite file ⇄ PostgreSQL): devices, profiles, keys, live tokens, refresh credentials, revocations, audit')
    .requiredOption('--from <file|url>', 'the registry to copy: a file path, sqlite:PATH or postgres://USER@HOST:PORT/DB (read only)')
    .requiredOption('--to <file|url>', 'the new registry: a file that does not exist yet, or an empty PostgreSQL database')
    .option('--json', 'print the counts as JSON')
    .addHelpText('after', examples(
      'credbroker registry copy --from ./data/credbroker.db --to postgres://credbroker@db.example:5432/credbroker',
      'credbroker registry copy --from "$CREDBROKER_DB" --to ./backup/credbroker.db   # PostgreSQL to a file',
    ))
    .action(async (opts: CopyOpts) => {
      const { openRegistry, localRegistryPath, parseRegistryTarget } = await import('../../registry/index.js');
      const { copyRegistry } = await import('../../operations/registry-copy.js');
      parseRegistryTarget(opts.to); // a bad --to is a usage error before anything is read
      const fromFile = localRegistryPath(opts.from);
      if (fromFile !== null) requireExistingRegistry(fromFile);
      const toFile = localRegistryPath(opts.to);
      if (toFile !== null && existsNonEmpty(toFile)) {
        throw new UsageError(`${toFile} already exists: registry copy writes a new registry (move the file away, or give another --to)`);
      }
      // A new file is filled under a temporary name and renamed into place once complete:
      // a copy killed half-way leaves no registry at --to (and the same command can run again).
      const partial = toFile === null ? null : `${toFile}.partial`;
      if (partial !== null) removeDbFiles(partial); // a killed run's leftover
      const from = await openRegistry(opts.from, { readonly: true });
      try {
        // Settings (issuer, audience, alg) are fixed when a registry is created: the copy is created with the source's.
        const to = await openRegistry(partial ?? opts.to, { init: await from.settings.read() });
        const toLocation = toFile ?? to.location;
        let counts: CopyCounts | null = null;
        const started = Date.now();
        try {
          counts = await copyRegistry(from, to, {
            onProgress: opts.json ? undefined : (done, total) => { if (done === total || done % 10_000 === 0) note(`copied ${count(done)} of ${count(total)} devices`); },
          });
        } finally {
          await to.close();
          if (partial !== null && toFile !== null) {
            // Closing the last connection folds the log into the file: the file alone is the registry.
            if (counts) renameSync(partial, toFile);
            else removeDbFiles(partial);
          }
        }
        if (opts.json) { printJson({ from: from.location, to: toLocation, ...counts }); return; }
        printTable(['what', 'copied'], Object.entries(counts).map(([k, v]) => [k, count(v)]));
        out(`copied ${from.location} to ${toLocation} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      } finally {
        await from.close();
      }
    });
}

/** A SQLite registry's files: the database, and its log and index while open. */
const DB_FILES = ['', '-wal', '-shm'] as const;

function removeDbFiles(file: string): void {
  for (const suffix of DB_FILES) rmSync(file + suffix, { force: true });
}

function existsNonEmpty(file: string): boolean {
  try {
    return statSync(file).size > 0;
  } catch {
    return false;
  }
}
