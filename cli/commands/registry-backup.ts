import type { Command } from 'commander';
import { examples, requireExistingRegistry, subcommand } from '../common.js';
import { out, printJson } from '../output.js';

/** `credbroker registry backup --to FILE`: a thin shell over registry/backupRegistry. */
export function registerRegistryBackup(registry: Command): void {
  subcommand(registry, 'backup', 'copy a SQLite registry into a new file, 0600 (it holds the private signing keys), while the broker runs')
    .requiredOption('--to <file>', 'the backup file: must not exist yet')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', examples(
      'credbroker registry backup --to /var/backups/credbroker-$(date +%F).db',
      'credbroker devices --db /var/backups/credbroker-2026-05-01.db   # read a backup in place',
    ) + `
The copy is consistent (SQLite's online backup) and opens read-only without creating
-wal or -shm files next to it. A PostgreSQL registry is backed up with pg_dump:
  (umask 077; pg_dump --format=custom --file=credbroker.dump "postgres://USER@HOST:PORT/DB")
`)
    .action(async (opts: { db: string; to: string; json?: boolean }) => {
      const { backupRegistry, localRegistryPath } = await import('../../registry/index.js');
      if (localRegistryPath(opts.db) !== null) requireExistingRegistry(opts.db);
      const started = Date.now();
      await backupRegistry(opts.db, opts.to);
      if (opts.json) printJson({ from: opts.db, to: opts.to });
      else out(`backed up ${opts.db} to ${opts.to} (0600) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
}
