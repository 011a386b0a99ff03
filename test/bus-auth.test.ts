// cluster/bus-auth.ts in-process, with real AES-256-GCM: what a receiver drops and
// how it counts it (the cluster tests drive it through Redis: cluster-bus-seal).
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import t from 'tap';
import { BusSeal, MAX_SENDERS, STALE_MS, type RejectReason } from '../cluster/bus-auth.js';
import type { BusKeys } from '../cluster/bus-keys.js';

function ring(...keys: { kid: Buffer; key: KeyObject }[]): BusKeys {
  const byKid = new Map(keys.map((k) => [k.kid.readUInt32BE(0), k.key]));
  return { sealing: keys[0]!, opening: byKid, stored: byKid };
}
const newKey = () => ({ kid: randomBytes(4), key: createSecretKey(randomBytes(32)) });

function receiver(keys: () => BusKeys, now = Date.now) {
  const rejected: RejectReason[] = [];
  let evicted = 0;
  const seal = new BusSeal(keys, (r) => rejected.push(r), () => { evicted++; }, now);
  return { seal, rejected, evicted: () => evicted };
}

t.test('a sealed message opens on its channel only, once; a copy through another subscription is dropped quietly', async (t) => {
  const k = ring(newKey());
  const from = new BusSeal(() => k, () => t.fail('sender rejects'), () => {});
  const to = receiver(() => k);
  const msg = from.seal('devices/a/commands/x', Buffer.from('hello'));
  t.notOk(msg.includes(Buffer.from('hello')), 'not in clear');
  t.equal(to.seal.open('devices/a/commands/y', msg, ''), null, 'another channel: refused');
  t.same(to.rejected, ['bad_seal']);
  t.equal(to.seal.open('devices/a/commands/x', msg, '')?.toString(), 'hello', 'opens on its channel');
  t.equal(to.seal.open('devices/a/commands/x', msg, 'devices/a/*'), null, 'the copy through a pattern subscription: dropped');
  t.same(to.rejected, ['bad_seal'], 'and not counted');
  t.equal(to.seal.open('devices/a/commands/x', msg, ''), null, 'the same message again through the same route: a replay');
  t.same(to.rejected, ['bad_seal', 'replay']);
  const next = from.seal('devices/a/commands/x', Buffer.from('two'));
  t.equal(to.seal.open('devices/a/commands/x', next, '')?.toString(), 'two', 'the next one opens');
  t.equal(to.seal.open('devices/a/commands/x', msg, ''), null, 'an older one replayed later: dropped');
  t.same(to.rejected, ['bad_seal', 'replay', 'replay']);
});

t.test('malformed, unknown key, altered, stale', async (t) => {
  const [k1, k2] = [newKey(), newKey()];
  let clock = Date.now();
  const from = new BusSeal(() => ring(k1), () => {}, () => {}, () => clock);
  const to = receiver(() => ring(k2), () => clock);
  to.seal.open('c', Buffer.from('plain text, not sealed at all'), '');
  to.seal.open('c', from.seal('c', Buffer.from('x')), '');
  t.same(to.rejected, ['malformed', 'bad_seal'], 'not sealed: malformed; sealed with a key not held: bad_seal');
  const both = receiver(() => ring(k2, k1), () => clock);
  const altered = from.seal('c', Buffer.from('payload'));
  altered[altered.length - 20]! ^= 1;
  t.equal(both.seal.open('c', altered, ''), null, 'altered: refused');
  const old = from.seal('c', Buffer.from('old'));
  clock += STALE_MS + 1;
  t.equal(both.seal.open('c', old, ''), null, 'sealed longer ago than the window: refused');
  t.same(both.rejected, ['bad_seal', 'stale']);
  t.equal(both.seal.open('c', from.seal('c', Buffer.from('new')), '')?.toString(), 'new', 'a previous key still held opens');
});

t.test('the senders remembered are bounded: the oldest is forgotten, counted', async (t) => {
  const k = ring(newKey());
  const to = receiver(() => k);
  for (let i = 0; i < MAX_SENDERS + 3; i++) {
    const from = new BusSeal(() => k, () => {}, () => {});
    to.seal.open('c', from.seal('c', Buffer.from(String(i))), '');
  }
  t.equal(to.evicted(), 3, 'three forgotten');
  t.same(to.rejected, [], 'nothing refused');
});

t.test('stored payloads: bound to their context, opened by any key held for stored data', async (t) => {
  const [k1, k2] = [newKey(), newKey()];
  const a = receiver(() => ring(k1));
  const sealed = a.seal.sealStored('stored:t/1', Buffer.from('retained'));
  t.notOk(sealed.includes(Buffer.from('retained')));
  t.equal(a.seal.openStored('stored:t/1', sealed)?.toString(), 'retained');
  t.equal(a.seal.openStored('stored:t/1', sealed)?.toString(), 'retained', 'read again: no replay check on stored data');
  t.equal(a.seal.openStored('stored:t/2', sealed), null, 'moved to another topic: refused');
  const rotated = receiver(() => ({ ...ring(k2), stored: new Map([[k2.kid.readUInt32BE(0), k2.key], [k1.kid.readUInt32BE(0), k1.key]]) }));
  t.equal(rotated.seal.openStored('stored:t/1', sealed)?.toString(), 'retained', 'after a rotation, the earlier key opens what it sealed');
  t.same(a.rejected, ['bad_seal']);
});
