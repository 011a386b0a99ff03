import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import { openRegistry, type Registry } from '../registry/index.js';
import { hashRefreshCredential, parseRefreshCredential } from '../tokens/index.js';
import { jwtPayload, runCli } from './helpers/cli.js';
import { sharedPostgres } from './helpers/postgres.js';

const DEVICES = Number(process.env.CREDBROKER_COPY_DEVICES ?? 300);

/** A token verifies against the registry's keys and settings, with no credbroker code in between. */
async function verifies(reg: Registry, token: string): Promise<boolean> {
  const settings = await reg.settings.read();
  const keys = (await reg.keys.usable(Date.now())).map((k) => ({ ...(JSON.parse(k.publicJwk) as JWK), kid: k.kid, alg: k.alg }));
  try {
    await jwtVerify(token, createLocalJWKSet({ keys }), { issuer: settings.issuer, audience: settings.audience });
    return true;
  } catch {
    return false;
  }
}

async function snapshot(target: string) {
  const reg = await openRegistry(target, { readonly: true });
  try {
    const stats = await reg.space.stats();
    return { rows: stats.rows, byStatus: await reg.devices.countByStatus(), profiles: (await reg.profiles.list()).map((p) => [p.name, p.publish, p.subscribe, p.tokenTtlMs]), settings: await reg.settings.read() };
  } finally {
    await reg.close();
  }
}

t.test('registry copy: SQLite → PostgreSQL → SQLite keeps every device, key, credential and revocation', async (t) => {
  const pg = await sharedPostgres();
  const dir = t.testdir({ 'batch.csv': `id\n${Array.from({ length: DEVICES }, (_, k) => `cp-${String(k).padStart(5, '0')}`).join('\n')}\n` });
  const first = join(dir, 'first.db');
  const back = join(dir, 'back.db');
  const url = await pg.newDatabase();
  const creds = join(dir, 'creds');
  const cli = (...args: string[]) => runCli(args);

  t.equal((await cli('init', '--db', first, '--issuer', 'urn:factory-7')).code, 0);
  t.equal((await cli('profile', 'set', 'valve', '--pub', 'v/{device}/state', '--sub', 'v/{device}/cmd', '--db', first)).code, 0);
  const prov = await cli('provision', '--batch', join(dir, 'batch.csv'), '--profile', 'sensor', '--out', creds, '--db', first);
  t.equal(prov.code, 0, prov.stderr);
  t.equal((await cli('revoke', 'cp-00001', 'cp-00002', '--db', first)).code, 0, 'two devices revoked');
  const tok = await cli('token', 'cp-00003', '--json', '--db', first);
  const extra = JSON.parse(tok.stdout) as { jti: string; accessToken: string };
  t.equal((await cli('revoke', '--token', extra.jti, '--db', first)).code, 0, 'one token (family) revoked');
  const grant = await cli('grant', 'support-1', '--sub', 'devices/+/telemetry', '--ttl', '30m', '--reason', 'ticket 42', '--db', first);
  t.equal(grant.code, 0, grant.stderr);
  const kept = JSON.parse(readFileSync(join(creds, 'cp-00004.json'), 'utf8')) as { accessToken: string; refreshCredential: string };
  writeFileSync(join(dir, 'serials.txt'), 'lot-1\nlot-2\n');
  t.equal((await cli('claim', 'create', 'lot', '--profile', 'sensor', '--allow-list', join(dir, 'serials.txt'), '--json', '--db', first)).code, 0, 'a claim with an allow-list');
  t.equal((await cli('claim', 'revoke', 'lot', '--db', first)).code, 0);
  t.equal((await cli('operator', 'add', 'alice', '--role', 'admin', '--db', first)).code, 0, 'an operator');
  t.equal((await cli('operator', 'token', 'alice', '--ttl', '30d', '--db', first)).code, 0, 'with an API token');

  const there = await cli('registry', 'copy', '--from', first, '--to', url, '--json');
  t.equal(there.code, 0, there.stderr);
  const counts = JSON.parse(there.stdout) as Record<string, unknown>;
  t.match(counts, { devices: DEVICES, revokedDevices: 2, profiles: 3, keys: 1, grants: 1, claims: 1, operators: 1, operatorTokens: 1 });
  t.notMatch(there.stdout + there.stderr, pg.password, 'the password is never printed');
  t.equal(counts.to, url.replace(pg.password, '***'));

  const again = await cli('registry', 'copy', '--from', first, '--to', url);
  t.equal(again.code, 2, 'a non-empty target is refused');
  t.match(again.stderr, /already holds a registry/);

  const home = await cli('registry', 'copy', '--from', url, '--to', back, '--json');
  t.equal(home.code, 0, home.stderr);
  const { from: _f, to: _t, ...backCounts } = JSON.parse(home.stdout) as Record<string, unknown>;
  const { from: _f2, to: _t2, ...thereCounts } = counts;
  t.same({ ...backCounts, auditEvents: 0 }, { ...thereCounts, auditEvents: 0 }, 'the same counts both ways');
  const ops = await cli('operator', 'list', '--json', '--db', back);
  t.match(JSON.parse(ops.stdout), [{ name: 'alice', role: 'admin', tokens: 1 }], 'operators and their API tokens come along, both ways');
  t.equal(backCounts.auditEvents, (thereCounts.auditEvents as number) + 1, 'plus the first copy\'s own audit row');

  const [a, b, c] = [await snapshot(first), await snapshot(url), await snapshot(back)];
  for (const table of ['devices', 'refresh_credentials', 'signing_keys', 'profiles', 'settings', 'claims', 'claim_allowed']) {
    t.equal(b.rows[table], a.rows[table], `${table}: PostgreSQL = SQLite`);
    t.equal(c.rows[table], a.rows[table], `${table}: back in SQLite = first`);
  }
  t.same(b.byStatus, a.byStatus);
  t.same(c.byStatus, a.byStatus);
  t.same(b.profiles, a.profiles);
  t.same(c.settings, a.settings, 'issuer and audience travel');

  for (const target of [url, back]) {
    const reg = await openRegistry(target, { readonly: true });
    try {
      t.ok(await verifies(reg, kept.accessToken), `${target === url ? 'PostgreSQL' : 'SQLite'}: a token minted before the copy verifies`);
      const jti = jwtPayload(kept.accessToken).jti as string;
      t.equal((await reg.tokens.get(jti))?.revokedAt, null);
      t.equal((await reg.refresh.find(hashRefreshCredential(parseRefreshCredential(kept.refreshCredential))))?.state, 'current', 'its refresh credential renews');
      t.equal((await reg.devices.require('cp-00001')).status, 'revoked');
      t.not((await reg.tokens.get(extra.jti))?.revokedAt ?? null, null, 'the revoked token stays revoked');
      t.ok((await reg.tokens.revokedLive(Date.now())).some((r) => r.jti === extra.jti), 'and is in the deny list a broker loads');
    } finally {
      await reg.close();
    }
  }
});
