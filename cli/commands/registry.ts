import { renameSync, rmSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import { examples, requireExistingRegistry } from '../common.js';
import { registerRegistryBackup } from './registry-backup.js';
import { count, note, out, printJson, printTable } from '../output.js';

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
      // A file is written under a temporary name beside it and renamed once complete: a copy
      // stopped half-way (Ctrl-C, a crash) never leaves a half-made registry at --to.
      const work = toFile === null ? opts.to : `${toFile}.partial`;
      const removeWork = () => { if (toFile !== null) for (const f of [work, `${work}-wal`, `${work}-shm`, `${work}-journal`]) rmSync(f, { force: true }); };
      removeWork(); // what a killed run left behind
      const stop = () => {
        removeWork();
        note(toFile === null ? 'credbroker: interrupted: the copy\'s transaction was not committed, run it again' : `credbroker: interrupted: nothing was written to ${toFile}`);
        process.exit(130);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const from = await openRegistry(opts.from, { readonly: true });
      try {
        // Settings (issuer, audience, alg) are fixed when a registry is created: the copy is created with the source's.
        const to = await openRegistry(work, { init: await from.settings.read() });
        let copied = false;
        try {
          const started = Date.now();
          const counts = await copyRegistry(from, to, {
            onProgress: opts.json ? undefined : (done, total) => { if (done === total || done % 10_000 === 0) note(`copied ${count(done)} of ${count(total)} devices`); },
          });
          await to.close();
          // A Ctrl-C that came while the engine held the event loop is acted on here, before the
          // rename: the second turn is sure to pass the loop's poll phase, where signals are read.
          for (let turn = 0; turn < 2; turn++) await new Promise((r) => setImmediate(r));
          if (toFile !== null) renameSync(work, toFile);
          copied = true;
          const where = toFile ?? to.location;
          if (opts.json) { printJson({ from: from.location, to: where, ...counts }); return; }
          printTable(['what', 'copied'], Object.entries(counts).map(([k, v]) => [k, count(v)]));
          out(`copied ${from.location} to ${where} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        } finally {
          await to.close();
          // A file this run created and could not fill is removed, so that the same command can run again.
          if (!copied) removeWork();
        }
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        await from.close();
      }
    });
  registerRegistryBackup(cmd);
}

function existsNonEmpty(file: string): boolean {
  try {
    return statSync(file).size > 0;
  } catch {
    return false;
  }
}
