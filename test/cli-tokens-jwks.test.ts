import t from 'tap';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { checkTokenStatus } from '../operations/check-token.js';
import { openRegistry, type DeviceId, type Jti } from '../registry/index.js';
import { rotateKeys } from '../tokens/index.js';
import { jwtPayload, runCli } from './helpers/cli.js';
import { registryTargetIn } from './helpers/backend.js';

interface Claims extends JWTPayload { sub: DeviceId; jti: Jti; iat: number; acl: { pub: string[]; sub: string[] } }

t.test('CLI tokens verify against the JWKS, across a key rotation; revocation is seen by the registry check', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  const cli = async (...args: string[]) => {
    const r = await runCli([...args, '--db', db]);
    t.equal(r.code, 0, `credbroker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const jwks = async () => createLocalJWKSet(JSON.parse(await cli('keys', 'jwks')) as JSONWebKeySet);
  const verify = async (token: string, set: ReturnType<typeof createLocalJWKSet>) =>
    (await jwtVerify<Claims>(token, set, { issuer: 'https://iot.example.com', audience: 'credbroker-mqtt', algorithms: ['ES256'] })).payload;
  const mint = async (id: string) => (JSON.parse(await cli('token', id, '--json')) as { accessToken: string }).accessToken;

  await cli('init', '--issuer', 'https://iot.example.com');
  const provisioned = JSON.parse(await cli('provision', 'dev-1', 'dev-2', '--profile', 'sensor', '--json')) as { accessToken: string }[];
  const tokenA = provisioned[0]!.accessToken;
  const tokenB = await mint('dev-1');

  const jwks1 = await jwks();
  const a = await verify(tokenA, jwks1);
  t.equal(a.sub, 'dev-1');
  t.equal(a.iss, 'https://iot.example.com');
  t.same(a.acl, { pub: ['devices/dev-1/telemetry', 'devices/dev-1/events/#'], sub: ['devices/dev-1/commands/#'] });
  await verify(tokenB, jwks1);
  const keysBefore = (JSON.parse(await cli('keys', 'jwks')) as JSONWebKeySet).keys;
  t.equal(keysBefore.length, 1);
  t.notOk('d' in keysBefore[0]!, 'the JWKS has no private key material');

  // rotate: a new key signs, the old one still verifies its tokens
  const rotation = JSON.parse(await cli('keys', 'rotate', '--json')) as { activeKid: string; retired: { kid: string; verifyUntil: string }[] };
  const oldKid = keysBefore[0]!.kid!;
  t.same(rotation.retired.map((r) => r.kid), [oldKid]);
  const tokenC = await mint('dev-1');
  const headerC = JSON.parse(Buffer.from(tokenC.split('.')[0]!, 'base64url').toString()) as { kid: string; alg: string; typ: string };
  t.same(headerC, { alg: 'ES256', kid: rotation.activeKid, typ: 'JWT' }, 'the new token is signed by the new key');
  const jwks2 = await jwks();
  for (const [name, token] of [['A', tokenA], ['B', tokenB], ['C', tokenC]] as const) {
    t.equal((await verify(token, jwks2)).sub, 'dev-1', `token ${name} verifies with the new JWKS`);
  }
  await t.rejects(verify(tokenC, jwks1), 'the old JWKS does not know the new key');

  // keys list shows the retired key with its verify-until (after the last token it signed expires)
  const keys = JSON.parse(await cli('keys', 'list', '--json')) as { kid: string; status: string; verifyUntil: string | null }[];
  const retired = keys.find((k) => k.kid === oldKid)!;
  t.equal(retired.status, 'retired');
  t.ok(Date.parse(retired.verifyUntil!) >= (jwtPayload(tokenB).exp as number) * 1000, 'verifies until the last token it signed has expired');
  t.equal(keys.find((k) => k.kid === rotation.activeKid)?.status, 'active');
  const table = await cli('keys', 'list');
  t.match(table, /^KID\s+ALG\s+STATUS\s+CREATED\s+RETIRED\s+VERIFIES UNTIL$/m);
  t.match(table, new RegExp(`^${oldKid}\\s+ES256\\s+retired\\s+\\S+ \\S+\\s+\\S+ \\S+\\s+${retired.verifyUntil!.slice(0, 19).replace('T', ' ')}Z$`, 'm'));

  // the registry check: every token is good until revoked
  const claims = {
    A: jwtPayload(tokenA) as unknown as Claims, B: jwtPayload(tokenB) as unknown as Claims, C: jwtPayload(tokenC) as unknown as Claims,
  };
  const status = async (c: Claims) => {
    const reg = await openRegistry(db);
    try {
      await checkTokenStatus(reg, c);
      return 'ok';
    } catch (err) {
      return (err as { code: string }).code;
    } finally {
      await reg.close();
    }
  };
  t.same([await status(claims.A), await status(claims.B), await status(claims.C)], ['ok', 'ok', 'ok']);

  await cli('revoke', '--token', claims.B.jti);
  t.same([await status(claims.A), await status(claims.B), await status(claims.C)], ['ok', 'ERR_TOKEN_REVOKED', 'ok'], 'revoke --token kills that token only');
  t.equal((await verify(tokenB, jwks2)).jti, claims.B.jti, 'its signature still verifies: revocation is a registry fact');

  await cli('revoke', 'dev-1', '--reason', 'test');
  t.same([await status(claims.A), await status(claims.B), await status(claims.C)], ['ERR_TOKEN_REVOKED', 'ERR_TOKEN_REVOKED', 'ERR_TOKEN_REVOKED'], 'revoke ID kills every token');
  const other = jwtPayload(provisioned[1]!.accessToken) as unknown as Claims;
  t.equal(await status(other), 'ok', 'another device is unaffected');

  await cli('restore', 'dev-1');
  t.same([await status(claims.A), await status(claims.C)], ['ERR_TOKEN_REVOKED', 'ERR_TOKEN_REVOKED'], 'old tokens stay dead after restore');
  const tokenD = await mint('dev-1');
  t.equal(await status(jwtPayload(tokenD) as unknown as Claims), 'ok', 'a token minted after restore is good');
  await verify(tokenD, await jwks());
  // a token issued before the restore cut-off is refused even if its jti was never revoked
  t.equal(await status({ ...claims.A, jti: 'never-recorded' as Jti }), 'ERR_TOKEN_REVOKED', 'iat before tokensValidAfter');
  t.equal(await status({ ...claims.A, sub: 'ghost' as DeviceId }), 'ERR_TOKEN_REVOKED', 'unknown device: fail closed');
});

t.test('EdDSA registries mint tokens jose verifies', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  const init = await runCli(['init', '--alg', 'EdDSA', '--db', db]);
  t.equal(init.code, 0, `init: ${init.stderr}`);
  const p = await runCli(['provision', 'ed-1', '--profile', 'observer', '--json', '--db', db]);
  const token = (JSON.parse(p.stdout) as { accessToken: string }[])[0]!.accessToken;
  t.equal(p.code, 0, p.stderr);
  const k = await runCli(['keys', 'jwks', '--db', db]);
  t.equal(k.code, 0, `keys jwks: ${JSON.stringify(k)}`);
  const set = createLocalJWKSet(JSON.parse(k.stdout) as JSONWebKeySet);
  const { payload, protectedHeader } = await jwtVerify(token, set, { issuer: 'urn:credbroker', audience: 'credbroker-mqtt', algorithms: ['EdDSA'] });
  t.equal(protectedHeader.alg, 'EdDSA');
  t.equal(payload.sub, 'ed-1');
});

t.test('rotations racing each other leave exactly one active key', async (t) => {
  const db = await registryTargetIn(t.testdir());
  const regs = await Promise.all([openRegistry(db), openRegistry(db), openRegistry(db)]); // as three CLI processes would
  t.teardown(() => Promise.all(regs.map((r) => r.close())));
  await rotateKeys(regs[0]!); // a key to retire
  const rotations = await Promise.all(regs.map((r) => rotateKeys(r)));
  const keys = await regs[0]!.keys.usable(Date.now());
  t.equal(keys.length, 4, 'the first key and three rotations');
  const active = keys.filter((k) => k.status === 'active');
  t.equal(active.length, 1, 'one active key');
  t.ok(rotations.some((r) => r.activeKid === active[0]!.kid), 'the last rotation to commit');
});
