// The hot-path verifier on its own: the accepted-header cache must never turn a
// header check into a pass it would not get on its own.
import t from 'tap';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import { isCredbrokerError } from '../errors/index.js';
import type { Kid } from '../registry/index.js';
import { verifyAccessToken, type VerifyKey } from '../tokens/index.js';
import { respell, signWith } from './helpers/hostile-jwt.js';

const OPTS = { issuer: 'urn:test', audience: 'credbroker-mqtt' };
const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const kid = 'k1' as Kid;
const key: VerifyKey = { kid, alg: 'ES256', key: pair.publicKey, jwk: pair.publicKey.export({ format: 'jwk' }) as JWK, retiredAt: Infinity, verifyUntil: Infinity };
const keys = new Map([[kid, key]]);
const H = { alg: 'ES256', kid, typ: 'JWT' };
const now = Math.floor(Date.now() / 1000);
const claims = () => ({ iss: OPTS.issuer, aud: OPTS.audience, sub: 'd1', iat: now, exp: now + 600, jti: randomBytes(8).toString('hex'), acl: { pub: [], sub: [] } });

const codeOf = (f: () => unknown): string => {
  try {
    f();
    return 'accepted';
  } catch (err) {
    return isCredbrokerError(err) ? err.code : String(err);
  }
};

t.test('a header seen before is still held to the caller’s algorithm list and key set', async (t) => {
  const token = signWith(pair.privateKey, H, claims());
  t.equal(codeOf(() => verifyAccessToken(token, keys, OPTS)), 'accepted');
  t.equal(codeOf(() => verifyAccessToken(signWith(pair.privateKey, H, claims()), keys, OPTS)), 'accepted', 'second token, same header');
  t.equal(codeOf(() => verifyAccessToken(token, keys, { ...OPTS, algorithms: ['EdDSA'] })), 'ERR_TOKEN_ALG');
  t.equal(codeOf(() => verifyAccessToken(token, new Map(), OPTS)), 'ERR_TOKEN_KID', 'another (rotated) key set does not inherit the header');
});

t.test('many distinct valid headers: all accepted, bad ones refused after the cache is full', async (t) => {
  for (let i = 0; i < 40; i++) {
    t.equal(codeOf(() => verifyAccessToken(signWith(pair.privateKey, { ...H, 'x-n': i }, claims()), keys, OPTS)), 'accepted', `variant ${i}`);
  }
  t.equal(codeOf(() => verifyAccessToken(signWith(pair.privateKey, { ...H, crit: ['x'] }, claims()), keys, OPTS)), 'ERR_TOKEN_MALFORMED', 'crit');
  t.equal(codeOf(() => verifyAccessToken(signWith(pair.privateKey, { ...H, jku: 'https://evil.example' }, claims()), keys, OPTS)), 'ERR_TOKEN_MALFORMED', 'jku');
  t.equal(codeOf(() => verifyAccessToken(signWith(pair.privateKey, { ...H, alg: 'none' }, claims()), keys, OPTS)), 'ERR_TOKEN_ALG', 'alg none');
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  t.equal(codeOf(() => verifyAccessToken(signWith(attacker.privateKey, H, claims()), keys, OPTS)), 'ERR_TOKEN_SIGNATURE', 'cached header, wrong signer');
});

t.test('one token, one spelling: a respelled segment is malformed', async (t) => {
  const [h, p, s] = signWith(pair.privateKey, H, claims()).split('.') as [string, string, string];
  t.equal(codeOf(() => verifyAccessToken(`${h}.${p}.${s}`, keys, OPTS)), 'accepted', 'control');
  t.equal(codeOf(() => verifyAccessToken(`${h}.${p}.${respell(s)}`, keys, OPTS)), 'ERR_TOKEN_MALFORMED', 'same signature bytes, another spelling');
  t.equal(codeOf(() => verifyAccessToken(`${h}.${p}.${s}AAA`, keys, OPTS)), 'ERR_TOKEN_MALFORMED', 'a length no byte string encodes to');
});

t.test('a key verifies nothing from its verify-until, nor tokens issued after its retirement; the lifetime cap holds', async (t) => {
  const ms = Date.now();
  const retired = (retiredAt: number, verifyUntil: number) => new Map([[kid, { ...key, retiredAt, verifyUntil }]]);
  const token = signWith(pair.privateKey, H, claims());
  t.equal(codeOf(() => verifyAccessToken(token, retired(ms + 60_000, ms + 120_000), OPTS)), 'accepted', 'retired after the token was issued, still verifying');
  t.equal(codeOf(() => verifyAccessToken(token, retired(ms - 120_000, ms - 1), OPTS)), 'ERR_TOKEN_KID', 'past verify-until');
  t.equal(codeOf(() => verifyAccessToken(token, retired(ms - 60_000, ms + 60_000), OPTS)), 'ERR_TOKEN_CLAIM', 'issued after the key was retired');
  t.equal(codeOf(() => verifyAccessToken(token, retired(ms - 3_000, ms + 60_000), OPTS)), 'accepted', 'within the leeway of the retirement');
  const long = signWith(pair.privateKey, H, { ...claims(), exp: now + 86_401 });
  t.equal(codeOf(() => verifyAccessToken(long, keys, OPTS)), 'accepted', 'no cap given');
  t.equal(codeOf(() => verifyAccessToken(long, keys, { ...OPTS, maxLifetimeSec: 86_400 })), 'ERR_TOKEN_CLAIM', 'over the cap');
  t.equal(codeOf(() => verifyAccessToken(signWith(pair.privateKey, H, { ...claims(), exp: now + 86_400 }), keys, { ...OPTS, maxLifetimeSec: 86_400 })), 'accepted', 'exactly the cap');
});
