import t from 'tap';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lines, runCli } from './helpers/cli.js';
import { registryTargetIn, TEST_BACKEND } from './helpers/backend.js';

// `registry backup --to FILE`: SQLite's online backup into a new 0600 file that opens read-only
// without -wal/-shm files; PostgreSQL is refused with how to run pg_dump privately.

t.test('registry backup', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  t.equal((await runCli(['provision', 'dev-1', 'dev-2', '--profile', 'sensor', '--json', '--db', db])).code, 0);
  const to = join(dir, 'backups', 'credbroker-backup.db');
  const backup = await runCli(['registry', 'backup', '--to', to, '--db', db]);

  if (TEST_BACKEND === 'postgres') {
    t.equal(backup.code, 2, 'a PostgreSQL registry: exit 2');
    t.same(lines(backup.stderr).length, 1);
    t.match(backup.stderr, /^credbroker: registry backup copies SQLite registry files; back up a PostgreSQL registry with pg_dump, keeping the dump private: \(umask 077; pg_dump --format=custom --file=\S+ "postgres:\/\/[^"]+"\)\n$/);
    t.notMatch(backup.stderr, /\*\*\*|:[^@/]+@/, 'the URL without its password, runnable as printed');
    return;
  }

  // The folder does not exist yet: --to names a new file in a new folder.
  t.equal(backup.code, 0, backup.stderr);
  t.match(backup.stdout, /^backed up \S+ to \S+credbroker-backup\.db \(0600\) in [\d.]+ s\n$/);
  t.equal(statSync(to).mode & 0o777, 0o600, 'the backup is 0600: it holds the private signing keys');

  const listed = await runCli(['devices', '--json', '--db', to]);
  t.equal(listed.code, 0, listed.stderr);
  t.same((JSON.parse(listed.stdout) as { id: string }[]).map((d) => d.id), ['dev-1', 'dev-2'], 'it holds the registry');
  t.same(readdirSync(join(dir, 'backups')), ['credbroker-backup.db'], 'reading it made no -wal or -shm file');

  const again = await runCli(['registry', 'backup', '--to', to, '--db', db]);
  t.equal(again.code, 2, 'an existing target: exit 2');
  t.same(lines(again.stderr), [`credbroker: ${to} already exists: a backup never overwrites a file (move it away, or give another --to)`]);

  const notADb = join(dir, 'not-a-registry.db');
  writeFileSync(notADb, 'hello, this is not SQLite at all, just some text to fill a page '.repeat(100));
  const bad = await runCli(['registry', 'backup', '--to', join(dir, 'b2.db'), '--db', notADb]);
  t.equal(bad.code, 5, 'a source that is not a registry: exit 5');
  t.equal(lines(bad.stderr).length, 1, bad.stderr);
  t.notOk(readdirSync(dir).includes('b2.db'), 'and no half-made backup is left');
});
