// cluster/bus-emitter.ts and bus-frame.ts: what crosses the bus, and which
// messages reach another broker's subscriptions, on a real redis-server (the
// cluster tests drive the same through real nodes).
import { randomBytes } from 'node:crypto';
import { serialize } from 'node:v8';
import t from 'tap';
import { redisSubscription } from '../cluster/bus-emitter.js';
import { decodeFrame, decodeFrames, encodeFrame, encodeFrames, type BusPacket } from '../cluster/bus-frame.js';
import { twoEmitters } from './helpers/bus-emitters.js';
import { until } from './helpers/wait.js';

t.test('a frame gives back the packet aedes handed over', async (t) => {
  const base = { cmd: 'publish', brokerId: 'host-1234-abcdef', brokerCounter: 2 ** 40 + 7, topic: 'devices/ä/telemetry', qos: 1, retain: true, dup: false };
  const cases: BusPacket[] = [
    { ...base, payload: Buffer.from('hello') },
    { ...base, qos: 0, retain: false, payload: Buffer.alloc(0) },
    { ...base, qos: 2, dup: true, payload: randomBytes(70_000) },
    { ...base, payload: 'a string payload ✓' }, // aedes' own publishes ($SYS) may carry a string
    { ...base, payload: Buffer.from('x'), clientId: 'dev-1', properties: { correlationData: Buffer.from([1, 2]), userProperties: { a: 'b' } } },
    { ...base, cmd: 'pubrel', payload: Buffer.alloc(0), messageId: 9 },
  ];
  for (const p of cases) t.same(decodeFrame(encodeFrame(p)), p, `${p.cmd} qos ${p.qos}, ${typeof p.payload} payload${p.clientId ? ', with extras' : ''}`);
  const decoded = decodeFrame(encodeFrame(cases[4]!));
  t.ok(Buffer.isBuffer(decoded.payload) && Buffer.isBuffer((decoded.properties as { correlationData: unknown }).correlationData), 'buffers stay buffers');
  t.notOk('messageId' in decodeFrame(encodeFrame({ ...base, payload: Buffer.alloc(0), messageId: undefined })), 'an undefined field does not travel');

  const clientOnly = { ...base, payload: Buffer.from('x'), clientId: 'dev-ü' };
  t.same(decodeFrame(encodeFrame(clientOnly)), clientOnly, 'the publisher\'s client id');
  t.equal(encodeFrame(clientOnly)[1]! & 0x20, 0, 'travels in the fixed part, not as an extra');
  t.same(decodeFrame(encodeFrame({ ...clientOnly, clientId: '' })), { ...clientOnly, clientId: '' }, 'an empty client id stays one');

  // The previous release's frame (version 1): no client id field, the client id in the extra.
  const extra = serialize({ clientId: 'dev-1' });
  const [topic, brokerId] = [Buffer.from(base.topic), Buffer.from(base.brokerId)];
  const head = Buffer.alloc(13);
  head[0] = 1;
  head[1] = 1 | 4 | 0x20; // QoS 1, retain, extra
  head.writeUInt16BE(topic.length, 2);
  head[4] = brokerId.length;
  head.writeDoubleBE(base.brokerCounter, 5);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(extra.length);
  const old = Buffer.concat([head, topic, brokerId, length, extra, Buffer.from('old')]);
  t.same(decodeFrames(old), [{ ...base, payload: Buffer.from('old'), clientId: 'dev-1' }], 'the previous release\'s frame is read');

  const good = encodeFrame(cases[0]!);
  t.throws(() => decodeFrame(Buffer.alloc(0)), RangeError, 'empty');
  t.throws(() => decodeFrame(Buffer.concat([Buffer.from([2]), good.subarray(1)])), RangeError, 'another version');
  t.throws(() => decodeFrame(good.subarray(0, 20)), RangeError, 'cut inside the topic');
});

t.test('a run of frames is one bus message that gives back every packet, in order', async (t) => {
  const packet = (i: number): BusPacket => ({ cmd: 'publish', brokerId: 'b', brokerCounter: i, topic: 'devices/a/telemetry', payload: Buffer.from(`m${i}`), qos: i % 2, retain: false, dup: false });
  const frames = [0, 1, 2].map((i) => encodeFrame(packet(i)));
  t.equal(encodeFrames(frames.slice(0, 1)), frames[0], 'a lone frame goes as itself (what the previous release reads)');
  t.same(decodeFrames(frames[0]!), [packet(0)], 'a lone frame reads as one packet');
  const batch = encodeFrames(frames);
  t.same(decodeFrames(batch), [0, 1, 2].map(packet), 'three frames, in order');
  t.throws(() => decodeFrames(batch.subarray(0, batch.length - 1)), RangeError, 'cut inside the last frame');
  t.throws(() => decodeFrames(batch.subarray(0, 3)), RangeError, 'cut inside a length');
  t.throws(() => decodeFrames(Buffer.from([2])), RangeError, 'a batch of nothing');
});

t.test('the Redis subscription of a filter', async (t) => {
  t.same(redisSubscription('devices/a/telemetry'), { key: 's:devices/a/telemetry', name: 'devices/a/telemetry', pattern: false });
  t.same(redisSubscription('devices/+/telemetry'), { key: 'p:devices/*/telemetry', name: 'devices/*/telemetry', pattern: true });
  t.same(redisSubscription('devices/a/#'), { key: 'p:devices/a*', name: 'devices/a*', pattern: true });
  t.same(redisSubscription('#'), { key: 'p:*', name: '*', pattern: true });
  t.same(redisSubscription('odd/[x]?*\\/+'), { key: 'p:odd/\\[x\\]\\?\\*\\\\/*', name: 'odd/\\[x\\]\\?\\*\\\\/*', pattern: true }, 'glob characters in a level are literal');
  t.not(redisSubscription('a/*').key, redisSubscription('a/+').key, 'a topic named like a pattern is another subscription');
});

t.test('between two emitters on one Redis (unsealed: the seal has its own tests): each filter gets what MQTT says it matches, once, and nothing else', async (t) => {
  const { a, b, conns } = await twoEmitters(t);

  const filters = ['devices/+/telemetry', 'devices/a/#', '#', 'odd/[x]/+', 'odd/*', 'exact/topic'];
  const got = new Map<string, string[]>(filters.map((f) => [f, []]));
  for (const f of filters) await new Promise<void>((r) => b.on(f, (p, done) => { got.get(f)!.push(p.topic); done(); }, r));
  const topics = ['devices/a/telemetry', 'devices/b/telemetry', 'devices/a', 'devices/a/x/y', 'devicesX/a/telemetry', 'devices/a/b/telemetry',
    'odd/[x]/1', 'odd/x/1', 'odd/*', 'odd/y', 'exact/topic', 'exact/topicX'];
  const mqttMatch = (filter: string, topic: string) => {
    const f = filter.split('/');
    const l = topic.split('/');
    for (let i = 0; i < f.length; i++) {
      if (f[i] === '#') return true; // the level above it too: devices/a/# matches devices/a
      if (i >= l.length || (f[i] !== '+' && f[i] !== l[i])) return false;
    }
    return f.length === l.length;
  };
  const send = (topic: string) => new Promise<void>((r) => a.emit({ cmd: 'publish', topic, payload: Buffer.from(topic), qos: 0, retain: false, dup: false, brokerId: 'a', brokerCounter: 1 }, () => r()));
  for (const topic of topics) await send(topic);
  // The sentinels, after all of them: one that every filter but the exact one matches, then one the exact one matches.
  const all = [...topics, 'devices/a/telemetry/end', 'exact/topic'];
  for (const topic of all.slice(topics.length)) await send(topic);
  await until('the sentinels', () => got.get('#')!.length === all.length && got.get('exact/topic')!.length === 2);
  for (const f of filters) {
    const want = all.filter((topic) => mqttMatch(f, topic));
    t.same(got.get(f), want, `${f}: ${want.length} message(s)`);
  }

  // The last listener of a channel gone: Redis no longer sends it here.
  const seen: string[] = [];
  const fn = (p: BusPacket, done: () => void) => { seen.push(p.topic); done(); };
  await new Promise<void>((r) => b.on('gone/+', fn, r));
  t.equal(Number(await conns[0]!.call('PUBSUB', 'NUMPAT')), 5, 'one pattern per wildcard filter');
  await new Promise<void>((r) => b.removeListener('gone/+', fn, r));
  await until('the pattern unsubscribed', async () => Number(await conns[0]!.call('PUBSUB', 'NUMPAT')) === 4);
});

t.test('the publishes of one turn go out as one PUBLISH per run of a channel, in the order they were made', async (t) => {
  const { a, b, conns } = await twoEmitters(t);
  const got: string[] = [];
  await new Promise<void>((r) => b.on('#', (p, done) => { got.push(p.payload.toString()); done(); }, r));
  const publishes = async () => Number(/cmdstat_publish:calls=(\d+)/.exec(String(await conns[0]!.call('INFO', 'commandstats')))?.[1] ?? 0);
  const before = await publishes();

  // One turn: 100 to x (past one run's 64 KiB at about 1 KiB a frame: cut in two), one to y, 5 to x again.
  const sent: string[] = [];
  let done = 0;
  const emit = (topic: string) => {
    const id = `${topic}-${sent.length}`;
    sent.push(id);
    a.emit({ cmd: 'publish', topic, payload: Buffer.concat([Buffer.from(id), Buffer.alloc(1024 - id.length, 32)]), qos: 1, retain: false, dup: false, brokerId: 'a', brokerCounter: sent.length }, () => { done++; });
  };
  for (let i = 0; i < 100; i++) emit('x');
  emit('y');
  for (let i = 0; i < 5; i++) emit('x');
  await until('every message on the other broker', () => got.length === sent.length);
  t.same(got.map((s) => s.trim()), sent, 'in the order they were published');
  await until('every publish done', () => done === sent.length);
  t.equal(await publishes() - before, 4, '106 publishes went out as 4 PUBLISHes: x, x (the cut at 64 KiB), y, x');
});
