import t, { type Test } from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { lines, runCli, type CliResult } from './helpers/cli.js';
import { registryTargetIn } from './helpers/backend.js';
import { sharedPostgres } from './helpers/postgres.js';

// A new user's stumbles: each refused with its exit code and one line that says what to do.

function refused(t: Test, r: CliResult, code: number, line: string | RegExp): void {
  t.equal(r.code, code, `exit ${code}`);
  const err = lines(r.stderr);
  t.equal(err.length, 1, `one line: ${JSON.stringify(r.stderr)}`);
  if (typeof line === 'string') t.equal(err[0], line);
  else t.match(err[0] ?? '', line);
  t.equal(r.stdout, '', 'nothing on stdout');
}

t.test('stumbles', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  const cli = (...args: string[]) => runCli([...args, '--db', db]);
  t.equal((await cli('init')).code, 0);
  t.equal((await cli('provision', 'dev-1', 'dev-2', 'dev-3', '--profile', 'sensor', '--out', join(dir, 'creds'))).code, 0);

  t.test('--db pointing at a folder', async (t) => {
    const folder = join(dir, 'a-folder');
    mkdirSync(folder);
    refused(t, await runCli(['devices', '--db', folder]), 5, `credbroker: registry ${folder} is a folder, not a registry file: give the file in it, e.g. --db ${join(folder, 'credbroker.db')}`);
    refused(t, await runCli(['init', '--db', folder]), 5, /is a folder, not a registry file/);
  });

  t.test('a PostgreSQL URL without its password', async (t) => {
    const pg = await sharedPostgres();
    const url = new URL(await pg.newDatabase());
    url.password = '';
    // The deadline sits well under the server's authentication_timeout (60 s): the command must not
    // wait for the server to drop a login it has already given up.
    const r = await runCli(['init', '--db', url.href], { env: { PGPASSWORD: undefined, PGPASSFILE: join(dir, 'no-pgpass') }, timeoutMs: 30_000 });
    refused(t, r, 5, /^credbroker: registry postgres:\/\/\S+: the database asks for a password and none was given: put it in ~\/\.pgpass or PGPASSWORD/);
    t.notMatch(r.stderr, /SASL|must be a string/);
  });

  t.test('provision of a revoked device: non-zero, points to restore', async (t) => {
    t.equal((await cli('revoke', 'dev-2')).code, 0);
    refused(t, await cli('provision', 'dev-2', '--profile', 'sensor', '--json'), 4,
      'credbroker: device dev-2 is revoked: provision never re-issues a revoked device; re-enable it with "credbroker restore dev-2" (then "credbroker token dev-2")');
  });

  t.test('provision of an existing device with another profile: non-zero, points to devices move', async (t) => {
    refused(t, await cli('provision', 'dev-3', '--profile', 'observer', '--json'), 4,
      'credbroker: device dev-3 already exists in profile sensor, not observer: provision never changes a device; move it with "credbroker devices move dev-3 --profile observer"');
    const same = await cli('provision', 'dev-3', '--profile', 'sensor', '--out', join(dir, 'creds'));
    t.equal(same.code, 0, 'the same device and profile is still skipped (a batch run again resumes)');

    const move = await cli('devices', 'move', 'dev-3', '--profile', 'observer');
    t.equal(move.code, 0, move.stderr);
    t.same(lines(move.stdout), ['moved dev-3 from profile sensor to observer', 'moved 1 device; the new ACL takes effect with each device\'s next token (renewal)']);
    const shown = JSON.parse((await cli('show', 'dev-3', '--json')).stdout) as { device: { profile: string }; recentAudit: { action: string; details: unknown }[] };
    t.equal(shown.device.profile, 'observer');
    t.match(shown.recentAudit[0], { action: 'device.move', details: { from: 'sensor', to: 'observer' } }, 'audited');
    refused(t, await cli('devices', 'move', 'dev-3', '--profile', 'nope'), 3, /unknown profile "nope"/);
    refused(t, await cli('devices', 'move', 'nobody', '--profile', 'sensor'), 3, /nobody/);
  });

  t.test('claim extend never shortens a claim without --allow-shorten', async (t) => {
    t.equal((await cli('claim', 'create', 'line-1', '--profile', 'sensor', '--ttl', '90d', '--json')).code, 0);
    refused(t, await cli('claim', 'extend', 'line-1', '--ttl', '14d'), 2, /^credbroker: --ttl 14d would shorten claim "line-1" \(expires \S+, would expire \S+\): the new expiry is --ttl from now; give a longer --ttl, or --allow-shorten$/);
    const longer = await cli('claim', 'extend', 'line-1', '--ttl', '120d');
    t.equal(longer.code, 0, longer.stderr);
    t.match(longer.stdout, /^claim line-1 now expires \S+ \S+ \(was \S+ \S+; /, 'says what it was');
    const shorter = await cli('claim', 'extend', 'line-1', '--ttl', '14d', '--allow-shorten');
    t.equal(shorter.code, 0, shorter.stderr);
  });

  t.test('provision --out in /proc: one line at once, no spin', async (t) => {
    refused(t, await runCli(['provision', 'dev-9', '--profile', 'sensor', '--out', '/proc/zz', '--db', db], { timeoutMs: 60_000 }), 2,
      'credbroker: cannot create --out /proc/zz: the file system refuses a folder there (ENOENT); give another folder');
  });

  t.test('show marks the tokens of a killed key dead', async (t) => {
    const before = JSON.parse((await cli('show', 'dev-1', '--json')).stdout) as { liveTokens: { jti: string }[] };
    t.equal(before.liveTokens.length, 1);
    t.equal((await cli('keys', 'rotate', '--now')).code, 0);
    const after = JSON.parse((await cli('show', 'dev-1', '--json')).stdout) as { liveTokens: unknown[]; deadTokens: { jti: string; why: string }[] };
    t.same(after.liveTokens, [], 'no live token left');
    t.match(after.deadTokens, [{ jti: before.liveTokens[0]!.jti, why: 'key_killed' }]);
    const text = (await cli('show', 'dev-1')).stdout;
    t.match(text, 'live tokens (0):');
    t.match(text, 'dead tokens (1): not expired, but their signing key was killed (keys rotate --now); the broker refuses them');
  });

  t.test('audit --action with an action nothing writes', async (t) => {
    refused(t, await cli('audit', '--action', 'device.revok'), 2, /^credbroker: unknown --action "device.revok": did you mean "device.revoke"\? \(known: .*device\.move.*; or a prefix such as "device\.\*"\)$/);
    refused(t, await cli('audit', '--action', 'nosuch'), 2, /^credbroker: unknown --action "nosuch" \(known: audit\.suppressed, /);
    const known = await cli('audit', '--action', 'grant.issue');
    t.equal(known.code, 0, 'a known action with no event yet is just "0 events"');
    t.match(known.stdout, /0 events/);
  });

  t.test('a duration without a unit', async (t) => {
    refused(t, await cli('token', 'dev-1', '--ttl', '14'), 2, 'credbroker: invalid --ttl "14": a duration needs a unit: 14s, 14m, 14h or 14d');
  });
});
