// Provisioning by claim, below the wire: the claim credential's format, the
// registry store, operations/claim.ts (every rule, and the quota under a race)
// and `credbroker claim ...` in a real process on a real SQLite file.
import t from 'tap';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { openIssuer } from '../provisioning/index.js';
import { openRegistry, parseDeviceId, type ClaimName, type DeviceId } from '../registry/index.js';
import { createClaim, extendClaim, authenticateClaim, provisionByClaim, revokeClaim, showClaim } from '../operations/index.js';
import { deleteProfile, removeSimulationDevices, setProfile } from '../operations/index.js';
import { hashClaimCredential, newClaimCredential, parseClaimCredential, parseRefreshCredential } from '../tokens/index.js';
import { isCredbrokerError } from '../errors/index.js';
import { registryTargetIn, TEST_BACKEND } from './helpers/backend.js';

const codeOf = async (p: Promise<unknown> | (() => unknown)): Promise<string> => {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'ok';
  } catch (err) {
    if (isCredbrokerError(err)) return err.code;
    throw err;
  }
};

t.test('claim credential: prefix, checksum, hash only', async (t) => {
  const c = newClaimCredential();
  t.match(c, /^cbcl_[A-Za-z0-9_-]{49}$/);
  t.equal(parseClaimCredential(c), c);
  const typo = c.slice(0, 10) + (c[10] === 'A' ? 'B' : 'A') + c.slice(11);
  t.equal(await codeOf(() => parseClaimCredential(typo)), 'ERR_CLAIM_MALFORMED', 'one changed character: refused by the checksum');
  t.equal(await codeOf(() => parseClaimCredential(c.replace('cbcl_', 'cbrt_'))), 'ERR_CLAIM_MALFORMED', 'another prefix');
  t.equal(await codeOf(() => parseRefreshCredential(c)), 'ERR_REFRESH_MALFORMED', 'not a refresh credential either');
  t.match(hashClaimCredential(c), /^[0-9a-f]{64}$/);
  t.not(newClaimCredential(), c);
});

t.test('reserved id prefixes refused at provisioning', async (t) => {
  for (const id of ['claim:x', 'grant:y']) t.equal(await codeOf(() => parseDeviceId(id)), 'ERR_INVALID_DEVICE_ID', id);
  t.equal(parseDeviceId('claimx:1'), 'claimx:1', 'only the exact prefixes');
});

t.test('operations: every rule, and exactly the quota under a race', async (t) => {
  const dir = t.testdir();
  const issuer = await openIssuer(await registryTargetIn(dir, 'r.db'));
  t.teardown(() => issuer.reg.close());
  const reg = issuer.reg;
  const brokerUrl = 'mqtt://127.0.0.1:1883';
  const req = (claim: string, id: string) => ({ claim: claim as ClaimName, deviceId: id as DeviceId, address: '127.0.0.1' });

  const { claim, credential } = await createClaim(reg, { brokerUrl, name: 'lot', profile: 'sensor', maxDevices: 10, idPattern: 'pump-[0-9]+' });
  t.equal(claim.maxDevices, 10);
  t.notOk(JSON.stringify(claim).includes(credential), 'the stored claim holds no credential');
  t.equal(claim.hash, hashClaimCredential(credential));
  t.equal((await authenticateClaim(reg, 'lot' as ClaimName, credential)).name, 'lot');
  t.equal(await codeOf(() => authenticateClaim(reg, 'lot' as ClaimName, newClaimCredential())), 'ERR_CLAIM_UNKNOWN', 'another claim credential');
  t.equal(await codeOf(() => authenticateClaim(reg, 'nope' as ClaimName, credential)), 'ERR_CLAIM_UNKNOWN', 'unknown claim');
  t.equal(await codeOf(() => authenticateClaim(reg, 'lot' as ClaimName, 'cbcl_short')), 'ERR_CLAIM_MALFORMED');

  t.equal(await codeOf(provisionByClaim(issuer, req('lot', 'valve-1'))), 'ERR_CLAIM_ID_NOT_ALLOWED', 'outside the pattern');
  t.equal(await codeOf(provisionByClaim(issuer, req('lot', 'pump-1x'))), 'ERR_CLAIM_ID_NOT_ALLOWED', 'the pattern is anchored');

  // 20 concurrent claims against a quota of 10: exactly 10 devices.
  const ids = Array.from({ length: 20 }, (_, i) => `pump-${i}`);
  const outcomes = await Promise.all(ids.map((id) => codeOf(provisionByClaim(issuer, req('lot', id)))));
  t.equal(outcomes.filter((o) => o === 'ok').length, 10, 'exactly 10 provisioned');
  t.equal(outcomes.filter((o) => o === 'ERR_CLAIM_QUOTA').length, 10, 'the other 10: quota');
  t.equal((await showClaim(reg, 'lot')).used, 10);
  t.equal((await showClaim(reg, 'lot')).state, 'exhausted');
  const provisioned = ids.filter((_, k) => outcomes[k] === 'ok');
  t.equal((await reg.devices.existing(ids)).size, 10, 'exactly 10 devices in the registry');
  const first = await reg.devices.require(provisioned[0]!);
  t.equal(first.profile, 'sensor');
  const row = (await reg.audit.query({ deviceId: provisioned[0]!, action: 'device.provision' }))[0];
  t.match(row, { actor: 'broker', details: { claim: 'lot', address: '127.0.0.1' } }, 'audited with the claim and the address');

  const { credential: c2 } = await createClaim(reg, { brokerUrl, name: 'lot2', profile: 'sensor', maxDevices: 5 });
  t.equal(await codeOf(provisionByClaim(issuer, req('lot2', provisioned[0]!))), 'ERR_DEVICE_EXISTS', 'an id that exists is never re-issued, through any claim');
  const dev = await provisionByClaim(issuer, req('lot2', 'gw-1'));
  t.equal(dev.deviceId, 'gw-1');
  t.match(dev.refreshCredential, /^cbrt_/);
  t.equal(dev.brokerUrl, brokerUrl);

  t.ok(await revokeClaim(reg, 'lot2', 'leaked'));
  t.notOk(await revokeClaim(reg, 'lot2', 'again'), 'revoking twice changes nothing');
  t.equal(await codeOf(provisionByClaim(issuer, req('lot2', 'gw-2'))), 'ERR_CLAIM_REVOKED');
  t.equal(await codeOf(() => authenticateClaim(reg, 'lot2' as ClaimName, c2)), 'ERR_CLAIM_REVOKED');
  t.equal((await reg.devices.require('gw-1')).status, 'active', 'a device provisioned through a revoked claim keeps working');
  t.equal(await codeOf(() => extendClaim(reg, 'lot2', 86_400_000)), 'ERR_CLAIM_REVOKED', 'a revoked claim cannot be extended');

  const { credential: c3 } = await createClaim(reg, { brokerUrl, name: 'old', profile: 'sensor', ttlMs: 1000, now: Date.now() - 5000 });
  t.equal(await codeOf(provisionByClaim(issuer, req('old', 'x-1'))), 'ERR_CLAIM_EXPIRED');
  t.equal(await codeOf(() => authenticateClaim(reg, 'old' as ClaimName, c3)), 'ERR_CLAIM_EXPIRED');
  await extendClaim(reg, 'old', 86_400_000);
  t.equal(await codeOf(provisionByClaim(issuer, req('old', 'x-1'))), 'ok', 'extended: it opens again');

  // A deleted device's id can be claimed again (a unit that lost its answer): one record per id.
  await createClaim(reg, { brokerUrl, name: 'simlot', profile: 'sensor', simulation: true });
  await provisionByClaim(issuer, req('simlot', 'again-1'));
  t.ok((await reg.devices.require('again-1')).simulation, 'a simulation claim provisions simulation devices');
  await removeSimulationDevices(reg, ['again-1']);
  t.equal(await codeOf(provisionByClaim(issuer, req('simlot', 'again-1'))), 'ok', 'claimed again after its device was deleted');
  t.equal(await reg.claims.used('simlot'), 1, 'one place of the quota for the one id');

  await createClaim(reg, { brokerUrl, name: 'listed', profile: 'sensor', allowList: ['a-1', 'a-2'] });
  t.equal((await showClaim(reg, 'listed')).claim.maxDevices, 2, 'quota defaults to the allow-list size');
  t.equal(await codeOf(provisionByClaim(issuer, req('listed', 'a-3'))), 'ERR_CLAIM_ID_NOT_ALLOWED', 'not on the allow-list');
  t.equal(await codeOf(provisionByClaim(issuer, req('listed', 'a-2'))), 'ok');
  t.equal(await codeOf(() => createClaim(reg, { brokerUrl, name: 'both', profile: 'sensor', idPattern: 'a-[0-9]', allowList: ['a-1', 'b-1'] })), 'ERR_USAGE', 'allow-list ids outside the pattern');
  await setProfile(reg, { name: 'valve', publish: ['devices/{device}/state'], subscribe: [] });
  await createClaim(reg, { brokerUrl, name: 'valves', profile: 'valve' });
  t.equal(await codeOf(() => deleteProfile(reg, 'valve')), 'ERR_PROFILE_IN_USE', 'a profile a claim provisions under cannot go');
});

t.test('credbroker claim ...', async (t) => {
  const dir = t.testdir({ 'serials.txt': 'id\npump-000001\n# a comment\n\npump-000002\n', 'bad.txt': 'pump-1\nbad/id\n' });
  const db = await registryTargetIn(dir, 'r.db');
  const cli = (...args: string[]) => runCli([...args, '--db', db]);
  t.equal((await cli('init')).code, 0);

  const made = await cli('claim', 'create', 'line3', '--profile', 'sensor', '--max-devices', '3', '--id-pattern', 'pump-[0-9]{6}', '--json');
  t.equal(made.code, 0, made.stderr);
  const j = JSON.parse(made.stdout) as Record<string, unknown>;
  t.match(j, { name: 'line3', profile: 'sensor', state: 'active', maxDevices: 3, used: 0, left: 3, idPattern: 'pump-[0-9]{6}', allowList: null });
  t.match(j.claimCredential, /^cbcl_/);
  const stored = await openRegistry(db);
  const rows = JSON.stringify([await stored.claims.list(), await stored.audit.query()]);
  await stored.close();
  t.notOk(rows.includes(j.claimCredential as string), 'the registry never holds the credential');
  if (TEST_BACKEND === 'sqlite') t.notOk(readFileSync(db).includes(Buffer.from(j.claimCredential as string)), 'nor any byte of the registry file');

  const file = join(dir, 'lot.claim.json');
  const withFile = await cli('claim', 'create', 'lot', '--profile', 'sensor', '--allow-list', join(dir, 'serials.txt'), '--out', file, '--broker-url', 'mqtts://b.example:8883');
  t.equal(withFile.code, 0, withFile.stderr);
  t.notMatch(withFile.stdout, /cbcl_/, 'with --out the credential is not printed');
  t.equal(statSync(file).mode & 0o777, 0o600, 'claim file mode 0600');
  t.match(JSON.parse(readFileSync(file, 'utf8')), { claim: 'lot', claimCredential: /^cbcl_/, brokerUrl: 'mqtts://b.example:8883' });
  const again = await cli('claim', 'create', 'lot-b', '--profile', 'sensor', '--out', file);
  t.equal(again.code, 2, 'an existing --out file is never overwritten');
  t.match(again.stderr, /exists already/);

  const refusals: [string[], number, RegExp][] = [
    [['claim', 'create', 'line3', '--profile', 'sensor'], 4, /exists already/],
    [['claim', 'create', 'x y', '--profile', 'sensor'], 2, /invalid claim name/],
    [['claim', 'create', 'p', '--profile', 'nope'], 3, /unknown profile/],
    [['claim', 'create', 'p', '--profile', 'sensor', '--id-pattern', '(['], 2, /invalid --id-pattern/],
    [['claim', 'create', 'p', '--profile', 'sensor', '--max-devices', '0'], 2, /--max-devices/],
    [['claim', 'create', 'p', '--profile', 'sensor', '--ttl', '90'], 2, /a duration needs a unit: 90s, 90m, 90h or 90d/],
    [['claim', 'create', 'p', '--profile', 'sensor', '--ttl', '4000d'], 2, /at most/],
    [['claim', 'create', 'p', '--profile', 'sensor', '--allow-list', join(dir, 'bad.txt')], 2, /line 2: "bad\/id" is not a device id/],
    [['claim', 'create', 'p', '--profile', 'sensor', '--allow-list', join(dir, 'missing.txt')], 2, /cannot read allow-list/],
    [['claim', 'create', 'p'], 2, /--profile/],
    [['claim', 'show', 'nope'], 3, /no claim "nope"/],
    [['claim', 'revoke', 'nope'], 3, /no claim "nope"/],
    [['claim', 'extend', 'line3'], 2, /--ttl/],
    [['provision', 'claim:abc', '--profile', 'sensor', '--json'], 2, /reserved for claim sessions/],
  ];
  for (const [args, code, msg] of refusals) {
    const r = await cli(...args);
    t.equal(r.code, code, `${args.join(' ')}: exit ${code}`);
    t.match(r.stderr, msg);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.equal(r.stdout, '', 'nothing on stdout');
  }

  const list = await cli('claim', 'list', '--json');
  t.equal(list.code, 0);
  t.same((JSON.parse(list.stdout) as { name: string }[]).map((c) => c.name), ['line3', 'lot']);
  t.notMatch(list.stdout, /cbcl_|hash/, 'no secret and no hash in listings');
  const human = await cli('claim', 'list');
  t.match(human.stdout, /^NAME\s+PROFILE\s+STATE/m);
  t.match(human.stdout, /^lot\s+sensor\s+active\s+0\s+2\s/m);

  const show = await cli('claim', 'show', 'lot');
  t.equal(show.code, 0);
  t.match(show.stdout, /quota:\s+0 of 2 used, 2 left/);
  t.match(show.stdout, /allow-list:\s+2 id\(s\)/);

  const ext = await cli('claim', 'extend', 'line3', '--ttl', '180d', '--json');
  t.equal(ext.code, 0, ext.stderr);
  const exp = Date.parse((JSON.parse(ext.stdout) as { expiresAt: string }).expiresAt);
  t.ok(Math.abs(exp - (Date.now() + 180 * 86_400_000)) < 60_000, 'expires 180 days from now');

  const rv = await cli('claim', 'revoke', 'line3', '--reason', 'leaked on a forum');
  t.equal(rv.code, 0);
  t.match(rv.stdout, /revoked claim line3/);
  const rv2 = await cli('claim', 'revoke', 'line3', '--json');
  t.same(JSON.parse(rv2.stdout), { claim: 'line3', revoked: false, alreadyRevoked: true });
  const shown = JSON.parse((await cli('claim', 'show', 'line3', '--json')).stdout) as Record<string, unknown>;
  t.match(shown, { state: 'revoked', revokedReason: 'leaked on a forum', devices: [] });
  t.equal((await cli('claim', 'extend', 'line3', '--ttl', '365d')).code, 4, 'extending a revoked claim: conflicting state');
  const audit = await cli('audit', '--json', '--limit', '20');
  t.notMatch(audit.stdout, /cbcl_/, 'the audit log never holds a claim credential');
  t.match(audit.stdout, /claim\.create/);
  t.match(audit.stdout, /claim\.revoke/);
});
