// Unit tests of the verified-token cache (broker/verified-tokens.ts) and its
// bounded LRU (util/lru.ts), without a broker: the bound, expiry at `exp`, and
// every change of keys or settings that must drop an entry.
import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { loadConfig } from '../broker/config.js';
import { VerifiedTokens, type EvictionReason } from '../broker/verified-tokens.js';
import type { Kid } from '../registry/index.js';
import type { VerifyKey, VerifyOptions } from '../tokens/index.js';
import { Lru } from '../util/lru.js';

t.test('Lru: bounded by count, least recently used evicted first', async (t) => {
  const lru = new Lru<string, number>(3);
  t.equal(lru.set('a', 1) + lru.set('b', 2) + lru.set('c', 3), 0, 'no eviction within the bound');
  t.equal(lru.get('a'), 1, 'a read makes "a" the most recent');
  t.equal(lru.set('d', 4), 1, 'one evicted past the bound');
  t.equal(lru.size, 3);
  t.equal(lru.get('b'), undefined, '"b", the least recently used, went first');
  t.same([...lru.entries()].map(([k]) => k), ['c', 'a', 'd'], 'least recently used first');
  t.equal(lru.set('a', 10), 0, 'replacing a key evicts nothing');
  t.equal(lru.get('a'), 10);
  for (let i = 0; i < 1000; i++) lru.set(`k${i}`, i);
  t.equal(lru.size, 3, 'never more than the bound');
  const off = new Lru<string, number>(0);
  t.equal(off.set('a', 1), 0);
  t.equal(off.size, 0, 'a bound of 0 keeps nothing');
  t.throws(() => new Lru(-1), RangeError);
  t.throws(() => new Lru(1.5), RangeError);
});

const NOW = 1_800_000_000_000;
const OPTS: VerifyOptions = { issuer: 'https://issuer.test', audience: 'aud', leewaySec: 5, maxLifetimeSec: 86_400 };

function key(kid: string, over: Partial<VerifyKey> = {}, material = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey): VerifyKey {
  return { kid: kid as Kid, alg: 'ES256', key: material, jwk: {}, retiredAt: Infinity, verifyUntil: Infinity, ...over };
}

/** A remembered token: the cache reads only its exp and kid. */
function token(kid: string, exp = NOW / 1000 + 3600): { kid: string; exp: number } {
  return { kid, exp };
}

function cache(max: number) {
  const seen = { hit: 0, miss: 0, evicted: {} as Partial<Record<EvictionReason, number>> };
  const c = new VerifiedTokens<{ kid: string; exp: number }>(max, {
    hit: () => seen.hit++,
    miss: () => seen.miss++,
    evicted: (why, n) => { seen.evicted[why] = (seen.evicted[why] ?? 0) + n; },
  });
  t.teardown(() => c.close());
  return { c, seen };
}

t.test('digest: every byte counts; off at 0', async (t) => {
  const { c } = cache(10);
  const tok = Buffer.from('aaa.bbb.ccc');
  const d = c.digestOf(tok)!;
  t.equal(d.length, 32, 'SHA-256, 32 one-byte characters');
  t.equal(c.digestOf(Buffer.from('aaa.bbb.ccc')), d, 'same bytes, same key');
  for (const other of [Buffer.concat([tok, Buffer.from([0])]), Buffer.from('aaa.bbb.ccd'), Buffer.from('Aaa.bbb.ccc'), tok.subarray(0, -1)]) {
    t.not(c.digestOf(other), d, `${JSON.stringify(other.toString('latin1'))} is another key`);
  }
  t.equal(cache(0).c.digestOf(tok), null, 'verifiedTokenCache 0: no digest, no cache');
});

t.test('a remembered token is answered until its exp, not a millisecond longer', async (t) => {
  const { c, seen } = cache(10);
  const k = key('k1');
  const keys = new Map([['k1', k]]);
  const v = token('k1', NOW / 1000 + 60);
  t.equal(c.get('d1', keys, OPTS, NOW), undefined, 'unknown: a miss');
  c.remember('d1', v, keys, OPTS, NOW);
  t.equal(c.size, 1);
  t.equal(c.get('d1', keys, OPTS, NOW + 1000), v, 'a hit');
  t.equal(c.get('d1', keys, OPTS, NOW + 59_999), v, 'a hit 1 ms before exp');
  t.equal(c.get('d1', keys, OPTS, NOW + 60_000), undefined, 'at exp: a miss (a fresh check still allows the leeway, the cache does not)');
  t.equal(c.size, 0, 'and the entry is gone');
  t.same(seen, { hit: 2, miss: 2, evicted: { expired: 1 } });
  c.remember('d2', token('k1', NOW / 1000 - 1), keys, OPTS, NOW);
  t.equal(c.size, 0, 'a token already past exp (within the leeway) is not remembered');
});

t.test('a clock stepped back before the verification: a miss', async (t) => {
  const { c, seen } = cache(10);
  const keys = new Map([['k1', key('k1')]]);
  c.remember('d1', token('k1'), keys, OPTS, NOW);
  t.equal(c.get('d1', keys, OPTS, NOW - 1), undefined, 'earlier than the verification: jose might refuse its iat or nbf now');
  t.same(seen.evicted, { clock: 1 });
});

t.test('bounded: the least recently used entry goes first, counted as capacity', async (t) => {
  const { c, seen } = cache(3);
  const keys = new Map([['k1', key('k1')]]);
  for (const d of ['a', 'b', 'c']) c.remember(d, token('k1'), keys, OPTS, NOW);
  t.ok(c.get('a', keys, OPTS, NOW), 'reading "a" makes it recent');
  c.remember('d', token('k1'), keys, OPTS, NOW);
  t.equal(c.size, 3, 'never over the bound');
  t.equal(c.get('b', keys, OPTS, NOW), undefined, '"b" was evicted');
  t.ok(c.get('a', keys, OPTS, NOW) && c.get('c', keys, OPTS, NOW) && c.get('d', keys, OPTS, NOW), 'the others stay');
  for (let i = 0; i < 10_000; i++) c.remember(`x${i}`, token('k1'), keys, OPTS, NOW);
  t.equal(c.size, 3, 'a flood of distinct tokens stays within the bound');
  t.equal(seen.evicted.capacity, 1 + 10_000);
  const { c: off } = cache(0);
  off.remember('a', token('k1'), keys, OPTS, NOW);
  t.equal(off.size, 0, '0 disables it');
});

t.test('keys: an entry lives only while its key is in the keyring, unchanged', async (t) => {
  const { c, seen } = cache(10);
  const material = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const k1 = key('k1', {}, material);
  const k2 = key('k2');
  const keys = new Map([['k1', k1], ['k2', k2]]);
  c.remember('a', token('k1'), keys, OPTS, NOW);
  c.remember('b', token('k2'), keys, OPTS, NOW);

  // A reload with the same keys (new objects, same material and life): kept.
  const reloaded = new Map([['k1', key('k1', {}, material)], ['k2', { ...k2 }]]);
  c.keysChanged(reloaded, NOW);
  t.equal(c.size, 2, 'a reload that changes nothing keeps every entry');
  t.ok(c.get('a', reloaded, OPTS, NOW), 'still a hit');

  // A normal rotation: k1 retired (still verifying until later): its entries go.
  const rotated = new Map([['k1', key('k1', { retiredAt: NOW, verifyUntil: NOW + 3_600_000 }, material)], ['k2', reloaded.get('k2')!]]);
  c.keysChanged(rotated, NOW);
  t.equal(c.get('a', rotated, OPTS, NOW), undefined, 'a token of a retired key: a miss (verified again)');
  t.ok(c.get('b', rotated, OPTS, NOW), 'a token of another key stays');

  // Same kid, other key material (never happens with thumbprint kids, but checked anyway).
  const swapped = new Map([['k2', key('k2')]]);
  c.keysChanged(swapped, NOW);
  t.equal(c.size, 0, 'a kid that now names another key: dropped');
  t.equal(seen.evicted.key, 2);

  // A lookup with a keyring the cache has not seen re-checks first (no reload hook needed).
  c.remember('c', token('k2'), swapped, OPTS, NOW);
  t.equal(c.get('c', new Map(), OPTS, NOW), undefined, 'keyring without its kid (keys rotate --now): a miss');
  t.equal(c.size, 0);
});

t.test('a retired key reaching its verify_until ends its entries at that instant', async (t) => {
  const { c, seen } = cache(10);
  const k = key('k1', { retiredAt: NOW - 1000, verifyUntil: NOW + 5000 });
  const keys = new Map([['k1', k]]);
  c.remember('a', token('k1'), keys, OPTS, NOW);
  t.ok(c.get('a', keys, OPTS, NOW + 4999), 'a hit before verify_until');
  t.equal(c.get('a', keys, OPTS, NOW + 5000), undefined, 'a miss at verify_until, before any keyring reload');
  t.same(seen.evicted, { key: 1 });
  c.remember('b', token('k1'), keys, OPTS, NOW + 5000);
  t.equal(c.size, 0, 'a key past verify_until remembers nothing');
});

t.test('settings: other verification rules empty the cache; the same rules rebuilt do not', async (t) => {
  const { c, seen } = cache(10);
  const keys = new Map([['k1', key('k1')]]);
  c.remember('a', token('k1'), keys, OPTS, NOW);
  t.ok(c.get('a', keys, { ...OPTS }, NOW), 'the same rules in a new object: still a hit');
  for (const other of [{ audience: 'x' }, { issuer: 'x' }, { leewaySec: 1 }, { maxLifetimeSec: 60 }, { algorithms: ['EdDSA' as const] }]) {
    c.remember('a', token('k1'), keys, OPTS, NOW);
    t.equal(c.get('a', keys, { ...OPTS, ...other }, NOW), undefined, `${JSON.stringify(other)}: a miss`);
    c.get('x', keys, OPTS, NOW); // back to the original rules (nothing cached under the other ones)
  }
  t.equal(seen.evicted.settings, 5);
  c.remember('a', token('k1'), keys, OPTS, NOW);
  t.equal(c.get('a', keys, { ...OPTS, now: new Date(NOW) }, NOW), undefined, 'a verification at a given instant is never answered from the cache');
});

t.test('the verifiedTokenCache setting: a whole number 0–10,000,000, by flag, environment or file', async (t) => {
  t.equal(loadConfig({}, {}).verifiedTokenCache, 100_000, 'default: sized to maxConnections');
  t.equal(loadConfig({ verifiedTokenCache: '0' }, {}).verifiedTokenCache, 0, '0 turns it off');
  t.equal(loadConfig({}, { CREDBROKER_VERIFIED_TOKEN_CACHE: '500' }).verifiedTokenCache, 500, 'CREDBROKER_VERIFIED_TOKEN_CACHE');
  for (const bad of ['-1', '1.5', 'lots', '10000001']) {
    t.throws(() => loadConfig({ verifiedTokenCache: bad }, {}), /invalid --verified-token-cache/, `${bad} refused with the flag's name`);
  }
});
