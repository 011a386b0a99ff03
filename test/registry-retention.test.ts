// The registry does not grow without end (issue 11 #9, issue 10 #5): the broker
// prunes token records past expiry + leeway and audit events past retention, gives
// the space back, and reports the registry's size; `audit prune` and
// `show --stats` do the same from the CLI; a registry made before auto_vacuum is
// upgraded in place.
import t from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueAccessToken, revokeToken } from '../operations/index.js';
import { openIssuer } from '../provisioning/index.js';
import type { DeviceId, Jti } from '../registry/index.js';
import { SCHEMA_VERSION } from '../registry/migration-plan.js';
import { SqliteStores } from '../registry/sqlite/stores.js';
import { connectDevice, startTestBroker } from './helpers/broker.js';
import { runCli } from './helpers/cli.js';
import { scrape } from './helpers/hostile-util.js';
import { until } from './helpers/wait.js';

const DAY = 86_400_000;

t.test('the broker prunes expired token records and old audit events, keeping what revocation needs', async (t) => {
  // A 20 s leeway: the token 1 s past its expiry stays inside it however slowly a loaded box gets to the pass.
  const tb = await startTestBroker({ leewaySec: 20, auditRetentionMs: 30 * DAY, renewalAuditRetentionMs: 3 * DAY });
  t.teardown(() => tb.close());
  const [dev] = await tb.provision(['ret-1']);
  const id = dev!.deviceId as DeviceId;
  const { reg } = tb.issuer;
  const now = Date.now();
  // Minted in the past: expired 60 s ago (past the leeway), 1 s ago (inside it), and live ones.
  const longGone = await issueAccessToken(tb.issuer, id, { ttlMs: 60_000, now: now - 120_000 });
  const inLeeway = await issueAccessToken(tb.issuer, id, { ttlMs: 60_000, now: now - 61_000 });
  const live = await issueAccessToken(tb.issuer, id, { ttlMs: 3_600_000, now });
  const revokedLive = await issueAccessToken(tb.issuer, id, { ttlMs: 3_600_000, now });
  await revokeToken(reg, revokedLive.jti as Jti);
  // The broker learns of it from the change feed, within a second (SPEC "Revocation"), not at once: wait until it
  // has, or the CONNECT below races the feed's poll (the CI flake: CONNACK 0) and says nothing about the pass.
  await until('the broker to apply the token revocation', () => tb.broker.context.revocation.isTokenRevoked(revokedLive.jti), 5_000);
  const old = (action: string, ageMs: number) => reg.audit.append('broker', action, id, { note: 'old' }, now - ageMs);
  await old('device.revoke', 31 * DAY); // past 30 d: pruned
  await old('device.restore', 4 * DAY); // inside 30 d: kept
  await old('token.renew', 4 * DAY); // a renewal past 3 d: pruned
  await old('token.renew', 1 * DAY); // inside 3 d: kept

  const pruned = await tb.broker.maintenance.run();
  t.ok(pruned, 'the maintenance pass ran');
  t.equal((await reg.tokens.get(longGone.jti)), undefined, 'a token expired past the leeway is pruned');
  t.ok((await reg.tokens.get(inLeeway.jti)), 'a token expired within the leeway is kept (it may still be accepted)');
  t.ok((await reg.tokens.get(live.jti)), 'a live token is kept');
  t.ok((await reg.tokens.get(revokedLive.jti))?.revokedAt, 'a revoked, unexpired token is kept: revocation by jti needs it');
  const oldRows = (await reg.audit.query({ deviceId: id, limit: 100 })).filter((e) => e.details?.note === 'old').map((e) => `${e.action}@${Math.round((now - e.at) / DAY)}d`);
  t.same(oldRows.sort(), ['device.restore@4d', 'token.renew@1d'], 'audit events past retention are pruned (renewals by their shorter retention)');
  t.ok(pruned!.tokens >= 1 && pruned!.audit === 2, `the pass reports what it deleted: ${JSON.stringify(pruned)}`);

  // The revoked token is still refused at CONNECT after the pass, the live one accepted.
  const refused = await connectDevice(tb.url, { deviceId: id, accessToken: revokedLive.token });
  t.equal(refused.code, 5, 'the revoked token is still refused (CONNACK 5)');
  const ok = await connectDevice(tb.url, { deviceId: id, accessToken: live.token });
  t.equal(ok.code, 0, 'the live token connects');
  ok.client?.end(true);
  // A broker that starts now loads its revocations from the tables: the pass kept what it needs.
  const restarted = await startTestBroker({ leewaySec: 20 }, { db: tb.db });
  const again = await connectDevice(restarted.url, { deviceId: id, accessToken: revokedLive.token });
  again.client?.end(true);
  await restarted.close();
  t.equal(again.code, 5, 'a broker started after the pass refuses it too');

  const http = tb.broker.ports.http!;
  t.equal(await scrape(http, 'credbroker_registry_rows', { table: 'tokens' }), (await reg.space.stats()).rows.tokens, '/metrics: rows per table');
  t.ok(await scrape(http, 'credbroker_registry_bytes', { file: 'db' }) > 0, '/metrics: the registry file size');
  t.ok(await scrape(http, 'credbroker_registry_pruned_rows_total', { table: 'tokens' }) >= 1, '/metrics: rows pruned');
});

t.test('credbroker audit prune --older-than and show --stats', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-retention-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'r.db');
  const reg = SqliteStores.open(db);
  const now = Date.now();
  for (let i = 0; i < 5000; i++) reg.audit.append('broker', 'auth.refused', null, { reason: 'bad_signature', address: '10.0.0.1' }, now - 10 * DAY - i);
  reg.audit.append('cli', 'device.revoke', 'kept-1', null, now - DAY);
  reg.close();

  const before = await runCli(['show', '--stats', '--json', '--db', db]);
  t.equal(before.code, 0, before.stderr);
  const s0 = JSON.parse(before.stdout) as { fileBytes: number; rows: Record<string, number>; autoVacuum: string; upkeep: string };
  t.equal(s0.rows.audit, 5001, 'show --stats counts rows per table');
  t.equal(s0.autoVacuum, 'incremental', 'a new registry runs auto_vacuum=INCREMENTAL');
  t.match(s0.upkeep, /^auto_vacuum incremental: /, 'show says how SQLite gets space back');

  const pruned = await runCli(['audit', 'prune', '--older-than', '7d', '--db', db]);
  t.equal(pruned.code, 0, pruned.stderr);
  t.match(pruned.stdout, /^pruned 5,000 audit events older than \d{4}-\d\d-\d\dT/, 'one line says what was pruned');
  const listed = await runCli(['audit', '--db', db, '--json']);
  t.same((JSON.parse(listed.stdout) as { deviceId: string }[]).map((e) => e.deviceId), ['kept-1'], '`audit` lists what is left, as before');
  const after = JSON.parse((await runCli(['show', '--stats', '--json', '--db', db])).stdout) as typeof s0 & { walBytes: number };
  t.ok(after.fileBytes < s0.fileBytes, `the file gave the space back: ${s0.fileBytes} → ${after.fileBytes} bytes`);

  const text = await runCli(['show', '--stats', '--db', db]);
  t.match(text.stdout, /^audit\s+1$/m, 'text output has a row per table');
  const bad = await runCli(['audit', 'prune', '--older-than', 'soon', '--db', db]);
  t.equal(bad.code, 2, 'a bad duration is exit 2');
  t.match(bad.stderr, /^credbroker: invalid --older-than "soon"/);
  const both = await runCli(['show', 'kept-1', '--stats', '--db', db]);
  t.equal(both.code, 2, 'show ID --stats is refused with one line');
});

t.test('a registry made before auto_vacuum (schema 1) is upgraded in place, data kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-retention-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'r.db');
  const issuer = await openIssuer(db);
  const { provisionDevices } = await import('../provisioning/index.js');
  await provisionDevices(issuer, [{ line: 2, id: 'old-1' }], { profile: 'sensor', brokerUrl: 'mqtt://127.0.0.1:1883' });
  await issuer.reg.close();
  // What the previous release left on disk: schema 1, no expiry index (2), no simulation column (3),
  // no token families (4), no claims (5), no grants (6), no operators (7), auto_vacuum off.
  const raw = new Database(db);
  raw.exec('DROP INDEX tokens_expiry');
  raw.exec('ALTER TABLE devices DROP COLUMN simulation');
  raw.exec('DROP INDEX tokens_family');
  raw.exec('ALTER TABLE tokens DROP COLUMN family');
  raw.exec('DROP TABLE claim_devices; DROP TABLE claim_allowed; DROP TABLE claims; DROP TABLE grants');
  raw.exec('DROP TABLE operator_tokens; DROP TABLE operators');
  raw.pragma('auto_vacuum = NONE');
  raw.exec('VACUUM');
  raw.pragma('user_version = 1');
  t.equal(raw.pragma('auto_vacuum', { simple: true }), 0, 'the old file has auto_vacuum off');
  raw.close();

  const reg = SqliteStores.open(db);
  t.teardown(() => reg.close());
  t.equal(reg.db.pragma('user_version', { simple: true }), SCHEMA_VERSION, 'migrated to the current schema');
  t.equal(reg.space.stats().autoVacuum, 'incremental', 'converted to auto_vacuum=INCREMENTAL (one VACUUM)');
  t.ok(reg.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'tokens_expiry'").get(), 'the expiry index exists');
  t.equal(reg.devices.get('old-1')?.status, 'active', 'the devices are still there');
  const [token] = reg.tokens.liveFor('old-1' as DeviceId, Date.now());
  t.ok(token, 'and their tokens');
  t.equal(token?.family, token?.jti, 'an old token record starts a family of its own');
});
