// The registry contract (registry/interface.ts), run on the engine the test run
// picks (test/helpers/backend.ts): the same assertions for SQLite and PostgreSQL.
import t, { type Test } from 'tap';
import { openRegistry, type ClaimName, type DeviceId, type GrantName, type Jti, type Kid, type ProfileName, type Registry } from '../registry/index.js';
import { Keyring, rotateKeys } from '../tokens/index.js';
import { freshRegistryTarget } from './helpers/backend.js';
import { until } from './helpers/wait.js';

const D = (s: string) => s as DeviceId;
const J = (s: string) => s as Jti;
const KID = 'kid-1' as Kid;
const DAY = 86_400_000;

async function fresh(t: Test): Promise<Registry> {
  const reg = await openRegistry(await freshRegistryTarget(t));
  t.teardown(() => reg.close());
  return reg;
}

t.test('first open seeds the default settings and profiles; settings are fixed at first use', async (t) => {
  const target = await freshRegistryTarget(t);
  const reg = await openRegistry(target, { init: { issuer: 'https://iot.example' } });
  t.equal((await reg.settings.read()).issuer, 'https://iot.example');
  t.same((await reg.profiles.list()).map((p) => p.name), ['observer', 'sensor']);
  await reg.close();
  const again = await openRegistry(target, { init: { issuer: 'urn:other' } });
  t.teardown(() => again.close());
  t.equal((await again.settings.read()).issuer, 'https://iot.example', 'a later init does not change it');
});

t.test('devices: insert, get, require, list with a prefix and a cursor, revoke, restore, counts', async (t) => {
  const reg = await fresh(t);
  const now = Date.now();
  for (const id of ['a-1', 'a-2', 'b-1']) await reg.devices.insert(D(id), 'sensor' as ProfileName, now + DAY, now);
  t.equal((await reg.devices.get('a-1'))?.status, 'active');
  t.equal(await reg.devices.get('nope'), undefined);
  await t.rejects(reg.devices.require('nope'), { code: 'ERR_DEVICE_NOT_FOUND' });
  t.same((await reg.devices.list({ prefix: 'a-' })).map((d) => d.id), ['a-1', 'a-2']);
  t.same((await reg.devices.list({ after: 'a-1', limit: 1 })).map((d) => d.id), ['a-2']);
  t.same([...(await reg.devices.existing(['a-1', 'zz']))], ['a-1']);
  t.equal(await reg.devices.revoke(D('a-1'), 'lost', now), true);
  t.equal(await reg.devices.revoke(D('a-1'), 'lost', now), false, 'already revoked');
  t.same(await reg.devices.countByStatus(), { active: 2, revoked: 1 });
  t.equal((await reg.devices.countByProfile()).get('sensor'), 3);
  t.same((await reg.devices.restrictions()).map((r) => r.id), ['a-1']);
  t.equal(await reg.devices.restore(D('a-1'), now + 5000), true);
  const restored = await reg.devices.require('a-1');
  t.equal(restored.status, 'active');
  t.equal(restored.tokensValidAfter, Math.floor((now + 5000) / 1000));
  await reg.devices.touchMany(new Map([[D('a-2'), now + 1]]));
  t.equal((await reg.devices.require('a-2')).lastSeenAt, now + 1);
});

t.test('provision writes device, token, refresh credential and audit row together', async (t) => {
  const reg = await fresh(t);
  const now = Date.now();
  await reg.transaction(async (tx) => tx.devices.provision([{
    deviceId: D('p-1'), profile: 'sensor' as ProfileName, credentialExpiresAt: now + DAY, simulation: true,
    token: { jti: J('j-1'), kid: KID, issuedAt: now, expiresAt: now + 3_600_000 }, refreshHash: 'h-1',
  }], now));
  t.equal((await reg.devices.require('p-1')).simulation, true);
  t.equal((await reg.tokens.get('j-1'))?.family, 'j-1');
  t.equal((await reg.refresh.find('h-1'))?.state, 'current');
  t.same((await reg.audit.query({ deviceId: 'p-1' })).map((e) => e.action), ['device.provision']);
});

t.test('a provisioned chunk is stored whole or not at all; its values come back exactly', async (t) => {
  const reg = await fresh(t);
  const now = Date.now();
  const row = (id: string, extra: Record<string, unknown> = {}) => ({
    deviceId: D(id), profile: 'sensor' as ProfileName, credentialExpiresAt: now + DAY, simulation: false,
    token: { jti: J(`j-${id}`), kid: KID, issuedAt: now, expiresAt: now + 3_600_000 }, refreshHash: `h-${id}`, auditDetails: extra,
  });
  await reg.transaction(async (tx) => tx.devices.provision([row('c-2')], now));
  // c-2 is already there: the chunk fails, and neither c-1 nor c-3 (nor their token, refresh credential, audit row) is kept.
  await t.rejects(reg.transaction(async (tx) => tx.devices.provision([row('c-1'), row('c-2'), row('c-3')], now)), { code: 'ERR_REGISTRY' });
  for (const id of ['c-1', 'c-3']) {
    t.equal(await reg.devices.get(id), undefined, `${id} rolled back`);
    t.equal(await reg.tokens.get(`j-${id}`), undefined);
    t.equal(await reg.refresh.find(`h-${id}`), undefined);
    t.same(await reg.audit.query({ deviceId: id }), []);
  }
  // Values that an array or COPY text encoding must escape come back as given.
  const awkward = { note: 'quote " backslash \\ brace {a,b} tab \t newline \n NULL', empty: '', nul: null };
  const rows = Array.from({ length: 1500 }, (_, k) => row(`bulk-${String(k).padStart(4, '0')}`, k === 7 ? awkward : {}));
  await reg.transaction(async (tx) => tx.devices.provision(rows, now));
  t.equal((await reg.devices.list({ prefix: 'bulk-' })).length, 1500);
  const [ev] = await reg.audit.query({ deviceId: 'bulk-0007' });
  t.same(ev?.details, { profile: 'sensor', jti: 'j-bulk-0007', ...awkward });
  t.equal(ev?.actor, 'cli');
  t.equal((await reg.refresh.find('h-bulk-1499'))?.deviceId, 'bulk-1499');
});

t.test('a transaction commits whole or not at all', async (t) => {
  const reg = await fresh(t);
  const now = Date.now();
  await t.rejects(reg.transaction(async (tx) => {
    await tx.devices.insert(D('x-1'), 'sensor' as ProfileName, now + DAY, now);
    await tx.audit.append('cli', 'test.step', 'x-1');
    throw new Error('boom');
  }), /boom/);
  t.equal(await reg.devices.get('x-1'), undefined, 'rolled back');
  t.same(await reg.audit.query({ deviceId: 'x-1' }), []);
  const n = await reg.transaction(async (tx) => {
    await tx.devices.insert(D('x-2'), 'sensor' as ProfileName, now + DAY, now);
    return tx.transaction(async (inner) => (await inner.devices.list()).length); // joins the outer one
  });
  t.equal(n, 1);
  await t.rejects(reg.devices.insert(D('x-2'), 'sensor' as ProfileName, now + DAY, now), { code: 'ERR_REGISTRY' }, 'a duplicate is a RegistryError');
});

t.test('tokens: families, revocation, live and revoked lists, pruning', async (t) => {
  const reg = await fresh(t);
  const now = Date.now();
  await reg.devices.insert(D('d'), 'sensor' as ProfileName, now + DAY, now);
  await reg.tokens.record({ jti: J('t1'), deviceId: D('d'), kid: KID, issuedAt: now - 2000, expiresAt: now - 1000 });
  await reg.tokens.record({ jti: J('t2'), deviceId: D('d'), kid: KID, issuedAt: now, expiresAt: now + 60_000, family: J('t1') });
  t.same((await reg.tokens.liveFor(D('d'), now)).map((x) => x.jti), ['t2']);
  t.equal(await reg.tokens.pruneExpired(now, 100, now - DAY), 0, 'an expired member of a live family stays');
  t.same((await reg.tokens.revokeFamily(J('t1'), now)).map((x) => x.jti).sort(), ['t1', 't2']);
  t.same((await reg.tokens.revokedLiveOfFamily(J('t1'), now)).map((x) => x.jti), ['t2']);
  t.same((await reg.tokens.revokedLive(now)).map((x) => x.jti), ['t2']);
  t.equal(await reg.tokens.lastExpiryOf(KID), now + 60_000);
  t.equal(await reg.tokens.lastExpiryOfDevice(D('d')), now + 60_000);
});

t.test('grants: record, live and latest of a name, list, revoke the live one, revoked list, pruning', async (t) => {
  const reg = await fresh(t);
  const now = Date.now();
  const G = (name: string, jti: string, issuedAt: number, expiresAt: number) => ({
    jti: J(jti), name: name as GrantName, publish: ['a/b'], subscribe: ['c/#'], reason: 'why', within: null, kid: KID, issuedAt, expiresAt,
  });
  await reg.grants.record(G('tech', 'g-old', now - 2 * DAY, now - DAY));
  await reg.grants.record(G('tech', 'g-1', now, now + 3_600_000));
  await reg.grants.record(G('other', 'g-2', now, now + 3_600_000));
  t.same((await reg.grants.get('g-1'))?.subscribe, ['c/#']);
  t.equal((await reg.grants.liveOf('tech' as GrantName, now))?.jti, 'g-1');
  t.equal((await reg.grants.latestOf('tech' as GrantName))?.jti, 'g-1');
  t.same((await reg.grants.list()).map((g) => g.jti), ['g-2', 'g-old', 'g-1'], 'by name, then issue time');
  t.same((await reg.grants.list({ activeAt: now })).map((g) => g.jti), ['g-2', 'g-1']);
  t.same((await reg.grants.revokeLive('tech' as GrantName, now)).map((g) => g.jti), ['g-1']);
  t.same(await reg.grants.revokeLive('tech' as GrantName, now), [], 'nothing live left');
  t.equal(await reg.grants.liveOf('tech' as GrantName, now), undefined);
  t.same(await reg.grants.revokedLive(now), [{ jti: 'g-1', expiresAt: now + 3_600_000 }]);
  t.equal(await reg.grants.pruneExpired(now, 10), 1, 'the expired one goes');
});

t.test('claims: insert with an allow-list, state, devices provisioned, quota under a race of two connections, delete', async (t) => {
  const target = await freshRegistryTarget(t);
  const a = await openRegistry(target);
  const b = await openRegistry(target); // a second connection: another broker node
  t.teardown(async () => { await a.close(); await b.close(); });
  const now = Date.now();
  const claim = (name: string) => ({
    name: name as ClaimName, profile: 'sensor' as ProfileName, hash: `h-${name}`, maxDevices: 6, idPattern: 'u-[0-9]+', brokerUrl: 'mqtt://b:1883',
    expiresAt: now + DAY, createdAt: now, simulation: false,
  });
  await a.claims.insert(claim('lot'), ['u-2', 'u-1', 'u-1']);
  await a.claims.insert(claim('open'), null);
  t.match(await a.claims.get('lot'), { name: 'lot', hasAllowList: true, maxDevices: 6, idPattern: 'u-[0-9]+', brokerUrl: 'mqtt://b:1883', revokedAt: null });
  t.equal((await a.claims.get('open'))?.hasAllowList, false);
  t.same(await a.claims.allowed('lot'), ['u-1', 'u-2'], 'the allow-list, once each, in order');
  t.equal(await a.claims.allowListSize('lot'), 2);
  t.ok(await a.claims.allows('lot', 'u-1'));
  t.notOk(await a.claims.allows('lot', 'u-3'));
  t.same((await a.claims.list()).map((c) => c.name), ['lot', 'open']);
  t.same(await a.claims.usingProfile('sensor'), ['lot', 'open']);
  await t.rejects(a.claims.require('nope'), { code: 'ERR_CLAIM_NOT_FOUND' });

  // Twelve claims through one claim from two connections against a quota of six: exactly six.
  const claimOne = (reg: Registry, id: string) => reg.transaction(async (tx) => {
    const c = await tx.claims.getForUpdate('open');
    if (!c || (await tx.claims.used('open')) >= c.maxDevices) return false;
    await tx.devices.insert(D(id), 'sensor' as ProfileName, now + DAY, now);
    await tx.claims.recordDevice(D(id), 'open' as ClaimName, now, '10.0.0.1');
    return true;
  });
  const won = await Promise.all(Array.from({ length: 12 }, (_, i) => claimOne(i % 2 ? a : b, `u-${i}`)));
  t.equal(won.filter(Boolean).length, 6, 'exactly the quota');
  t.equal(await a.claims.used('open'), 6);
  t.same(await a.claims.usedByClaim(), new Map([['open', 6]]));
  const devices = await a.claims.devices('open', 4);
  t.equal(devices.length, 4, 'limited');
  t.match(devices[0], { claim: 'open', address: '10.0.0.1' });

  await a.claims.recordDevice(devices[0]!.deviceId, 'lot' as ClaimName, now, null);
  t.same([await a.claims.used('open'), await a.claims.used('lot')], [5, 1], 'an id recorded again moves to the new claim');
  t.ok(await a.claims.revoke('lot', 'leaked', now));
  t.notOk(await a.claims.revoke('lot', 'again', now), 'already revoked');
  t.match(await a.claims.get('lot'), { revokedAt: now, revokedReason: 'leaked' });
  await a.claims.setExpiry('open', now + 2 * DAY);
  t.equal((await a.claims.get('open'))?.expiresAt, now + 2 * DAY);
  await a.claims.delete('open');
  t.equal(await a.claims.get('open'), undefined);
  t.equal(await a.claims.used('open'), 0, 'its device records went with it');
  t.ok(await a.devices.get(devices[1]!.deviceId), 'the devices stay');
});

t.test('refresh check-and-rotate: of two racing rotations of one credential, exactly one wins', async (t) => {
  const target = await freshRegistryTarget(t);
  const a = await openRegistry(target);
  const b = await openRegistry(target); // a second connection: another process or host
  t.teardown(async () => { await a.close(); await b.close(); });
  const now = Date.now();
  await a.devices.insert(D('r'), 'sensor' as ProfileName, now + DAY, now);
  await a.refresh.add('old', D('r'), now, now + DAY);
  const rotate = (reg: Registry, next: string) => reg.transaction(async (tx) => {
    const rec = await tx.refresh.findForUpdate('old');
    if (rec?.state !== 'current') return 'replayed';
    await tx.refresh.add(next, D('r'), now, now + DAY);
    await tx.refresh.setState('old', 'previous', now);
    await tx.refresh.supersede(D('r'), 'current', next);
    return 'rotated';
  });
  const outcomes = await Promise.all([rotate(a, 'new-a'), rotate(b, 'new-b')]);
  t.same(outcomes.sort(), ['replayed', 'rotated']);
  t.same((await a.refresh.forDevice(D('r'))).filter((r) => r.state === 'current').length, 1);
});

t.test('audit: append, appendMany, query by prefix and cursor, prune by action', async (t) => {
  const reg = await fresh(t);
  const now = Date.now();
  await reg.audit.append('cli', 'device.revoke', 'd1', { reason: 'x' }, now - 10_000);
  await reg.audit.appendMany([
    { actor: 'broker', action: 'token.renew', deviceId: 'd1', at: now - 5000 },
    { actor: 'broker', action: 'device.connect', deviceId: 'd2', details: { n: 1 }, at: now },
  ]);
  const all = await reg.audit.query();
  t.same(all.map((e) => e.action), ['device.connect', 'token.renew', 'device.revoke'], 'newest first');
  t.same((await reg.audit.query({ action: 'device.*' })).map((e) => e.action), ['device.connect', 'device.revoke']);
  t.same((await reg.audit.query({ before: all[0]!.id, limit: 1 })).map((e) => e.action), ['token.renew']);
  t.same(all[2]!.details, { reason: 'x' });
  t.equal(await reg.audit.prune(now, 100, ['token.renew']), 1);
  t.equal((await reg.audit.query()).length, 2);
});

t.test('keys: add, usable, retire', async (t) => {
  const reg = await fresh(t);
  const now = Date.now();
  await reg.keys.add({ kid: KID, alg: 'ES256', publicJwk: '{}', privateJwk: '{"d":1}' }, now);
  t.equal((await reg.keys.usable(now))[0]?.status, 'active');
  await reg.keys.retire(KID, now + 1000, now);
  const [k] = await reg.keys.all();
  t.equal(k?.privateJwk, null, 'the private half is wiped');
  t.same(await reg.keys.usable(now + 2000), []);
});

t.test('secrets beside the settings: unset, then compare-and-set (of two writers from one value, one wins), never in the settings read', async (t) => {
  const target = await freshRegistryTarget(t);
  const [a, b] = [await openRegistry(target), await openRegistry(target)];
  t.teardown(async () => { await a.close(); await b.close(); });
  t.equal(await a.settings.readSecret('busKeys'), null, 'unset');
  t.ok(await a.settings.swapSecret('busKeys', null, 'v1'), 'created');
  t.notOk(await b.settings.swapSecret('busKeys', null, 'other'), 'a second creation loses');
  t.equal(await b.settings.readSecret('busKeys'), 'v1', 'read from another connection');
  const won = await Promise.all([a.settings.swapSecret('busKeys', 'v1', 'va'), b.settings.swapSecret('busKeys', 'v1', 'vb')]);
  t.same(won.filter(Boolean).length, 1, 'of two swaps from v1, exactly one wins');
  t.equal(await a.settings.readSecret('busKeys'), won[0] ? 'va' : 'vb');
  t.notOk(JSON.stringify(await a.settings.read()).includes('busKeys'), 'not part of the settings');
});

t.test('the change feed: follow hands over every change after the start, in order, from another connection too', async (t) => {
  const target = await freshRegistryTarget(t);
  const follower = await openRegistry(target);
  const writer = await openRegistry(target);
  t.teardown(async () => { await follower.close(); await writer.close(); });
  await writer.changes.append('device_revoked', 'before');
  const start = await follower.changes.latest();
  const seen: string[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => { done = r; });
  const alive = setInterval(() => {}, 1000); // the follower's timer does not hold the process open
  t.teardown(() => clearInterval(alive));
  const f = follower.changes.follow(start, (cs) => {
    for (const c of cs) seen.push(`${c.kind}:${c.deviceId}`);
    if (seen.length >= 3) done();
  }, { pollMs: 20 });
  await writer.changes.append('device_revoked', 'd1');
  await writer.transaction(async (tx) => {
    await tx.changes.append('token_revoked', 'd2', 'j2');
    await tx.changes.append('keys_rotated', null);
  });
  await all;
  t.same(seen, ['device_revoked:d1', 'token_revoked:d2', 'keys_rotated:null']);
  const latest = await writer.changes.latest();
  // The position moves once onChanges has settled.
  await until('the follower\'s position to reach the last change', () => f.position === latest, 5_000);
  t.equal(f.position, latest);
  await f.close();
});

t.test('space: sizes and row counts in the engine\'s terms; scrub says what it did', async (t) => {
  const reg = await fresh(t);
  await Keyring.load(reg, Date.now(), { mintFirst: true });
  const stats = await reg.space.stats();
  t.ok(stats.fileBytes > 0);
  t.equal(stats.rows.profiles, 2);
  t.equal(stats.rows.signing_keys, 1);
  // A measure the engine does not have is null, never a made-up 0; one it has covers every table.
  if (stats.tableBytes !== null) t.same(Object.keys(stats.tableBytes), Object.keys(stats.rows), 'bytes for every table counted');
  if (stats.tableBytes !== null) t.ok(stats.tableBytes.signing_keys! > 0, 'the key table takes space');
  t.ok(stats.freePages === null || stats.freePages >= 0);
  t.ok(stats.deadRows === null || stats.deadRows >= 0);
  t.type(await reg.space.reclaim(), 'number');
  const rotated = await rotateKeys(reg);
  t.equal(rotated.retired.length, 1, 'a key retired (its row overwritten)');
  t.match(rotated.scrubbed, { complete: true, detail: /\S/ }, `no other reader: scrubbed completely (${rotated.scrubbed.detail})`);
});
