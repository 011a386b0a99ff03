import t, { type Test } from 'tap';
import { engine } from '../registry/postgres/index.js';
import { SCHEMA_VERSION } from '../registry/migration-plan.js';
import type { Registry } from '../registry/interface.js';
import type { Change } from '../registry/types.js';
import type { DeviceId, Jti, Kid, ProfileName } from '../registry/ids.js';
import { sharedPostgres } from './helpers/postgres.js';
import { runCli } from './helpers/cli.js';

const open = async (t: Test, url: string): Promise<Registry> => {
  const reg = await engine.open(url, {});
  t.teardown(() => reg.close());
  return reg;
};
const dev = (id: string) => id as DeviceId;

async function withDevice(reg: Registry, id: string): Promise<void> {
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
});
