import t, { type Test } from 'tap';
import { engine } from '../registry/postgres/index.js';
import { SCHEMA_VERSION } from '../registry/migration-plan.js';
import type { Registry } from '../registry/interface.js';
import type { Change } from '../registry/types.js';
import type { DeviceId, Jti, Kid, ProfileName } from '../registry/ids.js';
import { sharedPostgres } from './helpers/postgres.js';
import { runCli } from './helpers/cli.js';
import { until, within } from './helpers/wait.js';
import { Keyring, rotateKeys } from '../tokens/index.js';
import pg_ from 'pg';

const PgClient = pg_.Client;

const open = async (t: Test, url: string): Promise<Registry> => {
  const reg = await engine.open(url, {});
  t.teardown(() => reg.close());
  return reg;
};
const dev = (id: string) => id as DeviceId;

async function withDevice(reg: Pick<Registry, 'transaction'>, id: string): Promise<void> {
  const now = Date.now();
  await reg.transaction(async (tx) => {
    await tx.devices.provision([{
      deviceId: dev(id), profile: 'sensor' as ProfileName, credentialExpiresAt: now + 86_400_000, simulation: false,
      token: { jti: `jti-${id}` as Jti, kid: 'k1' as Kid, issuedAt: Math.floor(now / 1000), expiresAt: now + 3_600_000 }, refreshHash: `h-${id}`,
    }], now);
  });
}

const waitFor = async (what: string, ok: () => boolean, ms = 20_000) => {
  for (const end = Date.now() + ms; !ok();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

// The schema's twin check (tables, columns, indexes) is test/registry-schema-twins.test.ts.

t.test('open creates, seeds and migrates once; a newer schema is refused untouched', async (t) => {
  const pg = await sharedPostgres();
  const url = await pg.newDatabase();
  // Two nodes starting together: the advisory lock makes one migrate, the other wait.
  const [a, b] = await Promise.all([open(t, url), open(t, url)]);
  t.same((await a.profiles.list()).map((p) => p.name), ['observer', 'sensor']);
  t.equal((await b.settings.read()).issuer, 'urn:credbroker');
  t.notMatch(a.location, pg.password, 'the location shown in messages has no password');
  t.match(a.location, /postgres:\/\/credbroker:\*\*\*@127\.0\.0\.1:/);
  await pg.admin(url.split('/').pop()!, `UPDATE credbroker_schema SET version = ${SCHEMA_VERSION + 1}`);
  await t.rejects(engine.open(url, {}), { code: 'ERR_SCHEMA_TOO_NEW', message: /upgrade credbroker/ });
});

t.test('a refresh credential presented on two nodes at once: exactly one rotates it', async (t) => {
  const pg = await sharedPostgres();
  const url = await pg.newDatabase();
  const [nodeA, nodeB] = [await open(t, url), await open(t, url)];
  await withDevice(nodeA, 'race-1');
  let aLocked!: () => void;
  const locked = new Promise<void>((r) => { aLocked = r; });
  const renew = (reg: Registry, hold: boolean) => reg.transaction(async (tx) => {
    const rec = await tx.refresh.findForUpdate('h-race-1');
    if (hold) { aLocked(); await new Promise((r) => setTimeout(r, 300)); }
    if (rec?.state !== 'current') return 'replay';
    await tx.refresh.setState(rec.hash, 'superseded', Date.now());
    await tx.refresh.add(`h-race-1-${hold ? 'a' : 'b'}`, rec.deviceId, Date.now(), rec.expiresAt);
    return 'rotated';
  });
  const first = renew(nodeA, true);
  await locked;
  const second = renew(nodeB, false);
  t.same(await Promise.all([first, second]), ['rotated', 'replay'], 'the second waits on the row lock, then sees it rotated');
  t.same((await nodeB.refresh.forDevice(dev('race-1'))).map((r) => r.state), ['current', 'superseded'], 'one new credential, not two');
});

t.test('changes commit in seq order, and a follower on another node gets them through NOTIFY', async (t) => {
  const pg = await sharedPostgres();
  const url = await pg.newDatabase();
  const [writer, other, reader] = [await open(t, url), await open(t, url), await open(t, url)];
  const got: Change[] = [];
  const f = reader.changes.follow(0, (c) => { got.push(...c); }, { pollMs: 60_000 });
  t.teardown(() => f.close());
  await new Promise((r) => setTimeout(r, 300)); // connected and listening
  // A transaction that appended first but commits last must not let a later seq overtake it.
  let appended!: () => void;
  const slowAppended = new Promise<void>((r) => { appended = r; });
  const slow = writer.transaction(async (tx) => {
    await tx.changes.append('device_revoked', 'd-1');
    // A write is pipelined (it may resolve before the server ran it): a read after it waits until it holds the changes lock.
    await tx.changes.since(0);
    appended();
    await new Promise((r) => setTimeout(r, 300));
  });
  await slowAppended;
  const fast = other.changes.append('token_revoked', 'd-2', 'j-2');
  await Promise.all([slow, fast]);
  await waitFor('two changes', () => got.length >= 2, 5_000); // the poll is a minute away: this is NOTIFY
  t.same(got.map((c) => [c.kind, c.deviceId]), [['device_revoked', 'd-1'], ['token_revoked', 'd-2']]);
  t.ok(got[0]!.seq < got[1]!.seq, 'seq order is commit order');
  t.equal(f.position, got[1]!.seq);
});

t.test('server down: calls fail as unavailable without the password; the follower catches up after the restart', async (t) => {
  const pg = await sharedPostgres();
  const url = await pg.newDatabase();
  const [reg, cli] = [await open(t, url), await open(t, url)];
  await withDevice(reg, 'outage-1');
  const got: Change[] = [];
  const errors: unknown[] = [];
  let recovered = 0;
  const f = reg.changes.follow(await reg.changes.latest(), (c) => { got.push(...c); }, {
    pollMs: 200, onError: (e) => errors.push(e), onRecover: () => recovered++,
  });
  t.teardown(() => f.close());
  await pg.stop();
  t.teardown(() => pg.start());
  const err = await reg.devices.get('outage-1').then(() => null, (e: unknown) => e) as { code?: string; message?: string } | null;
  t.equal(err?.code, 'ERR_REGISTRY_UNAVAILABLE');
  t.notMatch(err?.message ?? '', pg.password, 'no password in the message');
  t.notMatch(JSON.stringify(err), pg.password);
  await t.rejects(reg.transaction(async (tx) => { await tx.devices.get('x'); }), { code: 'ERR_REGISTRY_UNAVAILABLE' });
  await waitFor('the follower to report the outage', () => errors.length > 0);
  t.match(errors[0], { code: 'ERR_REGISTRY_UNAVAILABLE' });
  // The database comes back with a revocation this follower never got a NOTIFY for (its connection was gone).
  await pg.start();
  await cli.transaction(async (tx) => {
    await tx.devices.revoke(dev('outage-1'), 'stolen', Date.now());
    await tx.changes.append('device_revoked', 'outage-1');
  }, { durable: true });
  await waitFor('the revocation made during the reconnect', () => got.some((c) => c.deviceId === 'outage-1'));
  t.ok(recovered >= 1, 'onRecover');
  t.equal((await reg.devices.require('outage-1')).status, 'revoked', 'the pool reconnects by itself');
});

t.test('TLS to the database from sslmode in the URL; a certificate it cannot verify is one clear error', async (t) => {
  const pg = await sharedPostgres();
  const url = await pg.newDatabase();
  const verified = await open(t, `${url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg.caCert)}`);
  const [viaTls] = await (verified as unknown as { sql: { rows<T>(q: string): Promise<T[]> } }).sql.rows<{ ssl: boolean }>(
    'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
  t.equal(viaTls?.ssl, true, 'the connection is encrypted');
  t.notMatch(verified.location, pg.password);
  const err = await engine.open(`${url}?sslmode=verify-full`, {}).then(() => null, (e: unknown) => e) as { code?: string; message?: string } | null;
  t.equal(err?.code, 'ERR_REGISTRY', 'an unverifiable server certificate is not a retryable outage');
  t.match(err?.message, /certificate/);
  t.notMatch(err?.message ?? '', pg.password);
});

t.test('show --stats on PostgreSQL reports what the server does, not SQLite\'s settings', async (t) => {
  const pg = await sharedPostgres();
  const url = await pg.newDatabase();
  const reg = await open(t, url);
  const stats = await reg.space.stats();
  t.equal(stats.autoVacuum, null, 'no auto_vacuum mode: the server reclaims dead rows itself');
  t.equal(stats.walBytes, 0, 'no write-ahead log of its own');
  t.match(stats.upkeep, /autovacuum \(on\)/, 'the server\'s autovacuum, as the server reports it');
  const shown = await runCli(['show', '--stats', '--db', url]);
  t.equal(shown.code, 0, shown.stderr);
  t.match(shown.stdout, /upkeep: +dead rows reclaimed by the server's autovacuum \(on\)/);
  t.notMatch(shown.stdout, /auto_vacuum|WAL/, 'no SQLite setting in the output');
  t.notMatch(shown.stdout + shown.stderr, pg.password);
  const json = JSON.parse((await runCli(['show', '--stats', '--json', '--db', url])).stdout) as Record<string, unknown>;
  t.equal(json.autoVacuum, null);
  t.match(json.rows, { devices: 0, profiles: 2 });
  t.equal(json.freePages, null, 'no free-page count: free space inside tables is the server\'s (free space map)');
});

t.test('stats on PostgreSQL: dead row versions and table sizes as the server counts them', async (t) => {
  const pg = await sharedPostgres();
  const url = await pg.newDatabase();
  const reg = await open(t, url);
  for (let i = 0; i < 20; i++) await withDevice(reg, `dead-${i}`);
  const before = await reg.space.stats();
  t.ok(before.tableBytes!.devices! > 0, `devices take ${before.tableBytes!.devices} bytes with their indexes`);
  const sum = Object.values(before.tableBytes!).reduce((a, b) => a + b, 0);
  t.ok(sum <= before.fileBytes, `the tables (${sum} B) fit in the database (${before.fileBytes} B)`);
  await pg.admin(url.split('/').pop()!, 'ALTER TABLE devices SET (autovacuum_enabled = off)');
  // Every UPDATE leaves the row's old version behind, dead, until VACUUM.
  await pg.admin(url.split('/').pop()!, 'UPDATE devices SET profile = profile');
  // The server counts dead rows when the deleting connection reports (within about a second of going idle).
  let after = before;
  await until('the server to count the old row versions', async () => (after = await reg.space.stats()).deadRows! >= 20 + before.deadRows!, 20_000);
  t.equal(after.rows.devices, 20, 'the live rows are counted apart');
  const shown = await runCli(['show', '--stats', '--db', url]);
  t.equal(shown.code, 0, shown.stderr);
  t.match(shown.stdout, /^dead rows:\s+[\d,]+ \(not yet vacuumed\)$/m, 'show --stats: the dead rows');
  t.match(shown.stdout, /^size:\s+[\d.]+ MiB \([\d,]+ pages of 8192 B\)$/m, 'no free-page count in the size line');
  t.match(shown.stdout, /^TABLE\s+ROWS\s+SIZE$/m, 'a size per table');
  t.match(shown.stdout, /^devices\s+20\s+[\d.]+ MiB$/m);
});

t.test('scrub on PostgreSQL: VACUUM, and not complete while a transaction still sees the retired key', async (t) => {
  const pg = await sharedPostgres();
  const url = await pg.newDatabase();
  const reg = await open(t, url);
  await Keyring.load(reg, Date.now(), { mintFirst: true });
  // A reader whose snapshot predates the rotation: VACUUM must keep the old row version for it.
  const reader = new PgClient({ connectionString: url });
  await reader.connect();
  t.teardown(() => reader.end());
  await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  await reader.query('SELECT count(*) FROM signing_keys');
  const held = await rotateKeys(reg);
  t.equal(held.retired.length, 1);
  t.match(held.scrubbed, { complete: false, detail: /^VACUUM signing_keys: [1-9]\d* dead row version\(s\) kept for a transaction that still sees them/ }, held.scrubbed.detail);
  const warned = await runCli(['keys', 'rotate', '--db', url]);
  t.equal(warned.code, 0, warned.stderr);
  t.match(warned.stderr, /^warning: another reader held the registry's storage: the retired private key is wiped from it later \(VACUUM signing_keys: /m, 'keys rotate says so, in PostgreSQL\'s terms');
  t.notMatch(warned.stderr, pg.password);
  await reader.query('COMMIT');
  // The reader is gone: VACUUM removes the old versions (a late report of the UPDATE's dead rows can trail it, hence the retry).
  await until('a scrub with nothing left', async () => (await reg.space.scrub()).complete, 20_000);
  t.pass('with no older transaction, scrub completes');
});

// A transaction's writes whose outcome nobody reads go out without waiting for their
// answers (registry/postgres/tx-sql.ts): a renewal is two round trips, not five.
t.test('a transaction does not wait on its unread writes; the first failure is what it fails with', async (t) => {
  const pg = await sharedPostgres();
  const url = await pg.newDatabase();
  const reg = await open(t, url);
  // Another session holds the audit table: an append's INSERT waits for it, the append does not.
  const locker = new PgClient({ connectionString: url });
  await locker.connect();
  t.teardown(() => locker.end());
  await locker.query('BEGIN; LOCK TABLE audit IN ACCESS EXCLUSIVE MODE');
  let appended = false;
  const committed = reg.transaction(async (tx) => {
    await tx.audit.append('cli', 'test.pipelined', null);
    appended = true;
  });
  try {
    await until('the append to resolve while its INSERT waits for the lock', () => appended, 10_000);
  } finally {
    await locker.query('COMMIT');
  }
  await within('the commit after the lock is gone', committed);
  t.equal((await reg.audit.query({ action: 'test.pipelined' })).length, 1, 'the commit waited for the write: it is there');

  // COPY after unread writes: they are answered first, then the connection is COPY's.
  await reg.transaction(async (tx) => {
    await tx.audit.append('cli', 'test.before-copy', null);
    await withDevice(tx, 'pipe-1'); // a transaction's nested transaction is itself
  });
  t.ok(await reg.devices.get('pipe-1'), 'provisioned by COPY after an unread write');

  // A duplicate token: the statements after it fail only because the transaction is
  // aborted; the error is the write's own, and nothing of the transaction stays.
  await t.rejects(reg.transaction(async (tx) => {
    await tx.tokens.record({ jti: 'jti-pipe-1' as Jti, deviceId: dev('pipe-1'), kid: 'k1' as Kid, issuedAt: Date.now(), expiresAt: Date.now() + 60_000 });
    await tx.audit.append('cli', 'test.after-duplicate', 'pipe-1');
    await tx.devices.get('pipe-1');
  }), { code: 'ERR_REGISTRY', message: /23505: duplicate key value violates unique constraint/ });
  t.same(await reg.audit.query({ action: 'test.after-duplicate' }), [], 'nothing of the failed transaction committed');
  await t.rejects(reg.transaction(async (tx) => {
    await tx.tokens.record({ jti: 'jti-pipe-1' as Jti, deviceId: dev('pipe-1'), kid: 'k1' as Kid, issuedAt: Date.now(), expiresAt: Date.now() + 60_000 });
  }), { code: 'ERR_REGISTRY', message: /23505/ }, 'a failed last write fails the commit');
  t.equal((await reg.tokens.liveFor(dev('pipe-1'), Date.now())).length, 1, 'only the provisioned token');
});
