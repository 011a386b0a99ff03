// The hot-path verifier on its own: the accepted-header cache must never turn a
// header check into a pass it would not get on its own.
import t from 'tap';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import { isCredbrokerError } from '../errors/index.js';
import type { Kid } from '../registry/index.js';
import { verifyAccessToken, type VerifyKey } from '../tokens/index.js';
import { signWith } from './helpers/hostile-jwt.js';

const OPTS = { issuer: 'urn:test', audience: 'credbroker-mqtt' };
const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const kid = 'k1' as Kid;
const key: VerifyKey = { kid, alg: 'ES256', key: pair.publicKey, jwk: pair.publicKey.export({ format: 'jwk' }) as JWK };
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
