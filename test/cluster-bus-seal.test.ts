// Issue 19: the Redis bus is a trust boundary. Every message the brokers of a
// cluster put on it is sealed with the cluster key; from a process that talks to
// Redis directly (ioredis), nothing is readable, and nothing written straight into
// Redis is believed: a publish in the bus' framing, a replay of a captured
// sealed message, a forged takeover. A rotation while the cluster runs keeps
// cross-worker delivery working. Real `serve --workers 2 --bus` processes.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import { encodeFrame } from '../cluster/bus-frame.js';
import { closed } from './helpers/broker.js';
import { runCli } from './helpers/cli.js';
import { startCluster, until, type TestCluster } from './helpers/cluster.js';

// The bus' own frame, unsealed: what an attacker on Redis who read the source would write.
const frame = (topic: string, payload: Buffer) => encodeFrame({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false, brokerId: 'forger', brokerCounter: 1 });
// aedes-persistence-redis' stored framing (msgpack).
const msgpack = createRequire(import.meta.url)('msgpack-lite') as { encode(v: unknown): Buffer };

/** A reader of everything on the bus (`PSUBSCRIBE *`), as raw channel and bytes. */
async function tap(t: Test, url: string): Promise<{ redis: Redis; pub: Redis; seen: { channel: string; message: Buffer }[] }> {
  const [redis, pub] = [new Redis(url), new Redis(url)];
  t.teardown(() => { redis.disconnect(); pub.disconnect(); });
  const seen: { channel: string; message: Buffer }[] = [];
  redis.on('pmessageBuffer', (_p: Buffer, channel: Buffer, message: Buffer) => seen.push({ channel: channel.toString(), message }));
  await redis.psubscribe('*');
  return { redis, pub, seen };
}

/** A sensor device connected to one worker and an observer on the other; the sensor subscribed to its commands. */
async function pair(t: Test, cluster: TestCluster, id: string) {
  const [dev] = await cluster.provision([id]);
  const [obs] = await cluster.provision([`${id}-obs`], 'observer');
  const got: string[] = [];
  const d = await cluster.connectOn({ clientId: dev!.deviceId, username: dev!.deviceId, password: dev!.accessToken }, 0, got);
  const o = await cluster.connectAway(d.place, { clientId: obs!.deviceId, username: obs!.deviceId, password: obs!.accessToken });
  t.teardown(() => { d.client?.end(true); o.client?.end(true); });
  t.ok(d.client && o.client, 'both connected');
  t.not(d.place, o.place, `on two workers (${d.place}, ${o.place})`);
  await d.client!.subscribeAsync(`devices/${id}/commands/#`, { qos: 1 });
  const topic = `devices/${id}/commands/x`;
  /** The observer publishes `payload` (QoS 1) and the device gets it. */
  const send = async (payload: string) => {
    await o.client!.publishAsync(topic, payload, { qos: 1 });
    await until(`"${payload}" at the device`, () => got.includes(`${topic} ${payload}`));
  };
  return { device: d.client as MqttClient, deviceId: dev!.deviceId, got, topic, send, place: d.place };
}

async function rejected(cluster: TestCluster, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${cluster.nodes[0]!.httpPort}/metrics`)).text();
  return Number(new RegExp(`^credbroker_bus_rejected_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

t.test('a PSUBSCRIBE * reader sees no payload in clear during cross-worker publishes', async (t) => {
  const cluster = await startCluster(t, 'workers');
  const reader = await tap(t, cluster.redis.url);
  const p = await pair(t, cluster, 'seal-read');
  const secret = `secret-${randomBytes(12).toString('hex')}`;
  await p.send(secret);
  // The reader's subscription is Redis' client like the worker's: it may hear the publish after the device has it.
  await until('the reader captured the publish on its channel', () => reader.seen.some((m) => m.channel === p.topic));
  t.pass('the reader captured the publish on its channel');
  t.notOk(reader.seen.some((m) => m.message.includes(secret)), 'no captured bytes contain the payload');
});

t.test('a publish written into Redis, and a replay of a captured one, are not delivered; the observer\'s next one is', async (t) => {
  const cluster = await startCluster(t, 'workers');
  const reader = await tap(t, cluster.redis.url);
  const p = await pair(t, cluster, 'seal-inject');
  const malformed = await rejected(cluster, 'malformed');
  await reader.pub.publish(p.topic, frame(p.topic, Buffer.from('injected-reboot')));
  await p.send('sentinel-1');
  t.notOk(p.got.some((m) => m.includes('injected-reboot')), 'the injected publish was not delivered');
  await until('the injected message counted as malformed', async () => await rejected(cluster, 'malformed') > malformed);

  // The reader saw the injected message, then the observer's sealed one.
  await until('the reader to capture the sealed publish', () => reader.seen.filter((m) => m.channel === p.topic).length >= 2);
  const captured = reader.seen.filter((m) => m.channel === p.topic)[1]!;
  const replays = await rejected(cluster, 'replay');
  const before = p.got.filter((m) => m === `${p.topic} sentinel-1`).length;
  const pub = reader.pub;
  await pub.publish(p.topic, captured.message);
  await p.send('sentinel-2');
  t.equal(p.got.filter((m) => m === `${p.topic} sentinel-1`).length, before, 'the replayed message was not delivered again');
  await until('the replay counted', async () => await rejected(cluster, 'replay') > replays);
  const forged = Buffer.from(captured.message);
  forged[forged.length - 20]! ^= 1;
  await pub.publish(p.topic, forged);
  await p.send('sentinel-3');
  await until('the altered message counted as bad_seal', async () => await rejected(cluster, 'bad_seal') > 0);
  t.same(p.got.filter((m) => m.startsWith(p.topic)).length, 3, 'the device got exactly the three sentinels');
});

t.test('a takeover forged on $SYS/<broker id>/takeover with the owner key\'s claim does not kick the device', async (t) => {
  const cluster = await startCluster(t, 'workers');
  const reader = await tap(t, cluster.redis.url);
  const p = await pair(t, cluster, 'seal-kick');
  let kicked = false;
  void closed(p.device).then(() => { kicked = true; });
  const claim = await reader.pub.get(`credbroker:owner:${p.deviceId}`);
  t.ok(claim, `the owner key holds a claim (${claim})`);
  const topic = `$SYS/${claim!.slice(0, claim!.indexOf('|'))}/takeover`;
  const receivers = await reader.pub.publish(topic, frame(topic, Buffer.from(JSON.stringify({ clientId: p.deviceId, claim }))));
  t.ok(receivers >= 1, 'the owning worker listens on that channel');
  await p.send('after-forged-takeover');
  t.notOk(kicked, 'the device is still connected');
});

t.test('the cluster key rotated while the cluster runs: cross-worker delivery keeps working, sealed with the new key', async (t) => {
  const cluster = await startCluster(t, 'workers');
  const reader = await tap(t, cluster.redis.url);
  const p = await pair(t, cluster, 'seal-rotate');
  const kidOf = (payload: string) => {
    const m = reader.seen.filter((s) => s.channel === p.topic).at(-1)!;
    t.ok(m, `captured "${payload}"`);
    return m.message.subarray(1, 5).toString('hex');
  };
  await p.send('before-rotation');
  const oldKid = kidOf('before-rotation');
  const r = await runCli(['cluster-key', 'rotate', '--db', cluster.db, '--json']);
  t.equal(r.code, 0, `rotate exits 0 ${r.stderr}`);
  const { kid } = JSON.parse(r.stdout) as { kid: string };
  t.not(kid, oldKid, 'a new key id');
  const stored = JSON.parse((await cluster.nodes[0]!.issuer.reg.settings.readSecret('busKeys'))!) as { keys: { key: string }[] };
  t.equal(stored.keys.length, 2, 'two keys stored');
  t.notOk(stored.keys.some((k) => r.stdout.includes(k.key) || r.stderr.includes(k.key)), 'no key is printed');
  // Delivery keeps working while the new key propagates and after it seals.
  for (let i = 0; i < 8; i++) {
    await p.send(`during-${i}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
  await until('the new key sealing', async () => {
    await p.send(`after-${randomBytes(3).toString('hex')}`);
    return kidOf('after') === kid;
  }, 20_000);
  const list = await runCli(['cluster-key', 'list', '--db', cluster.db, '--json']);
  const keys = JSON.parse(list.stdout) as { kid: string; state: string }[];
  t.same(keys.map((k) => [k.kid, k.state]), [[oldKid, 'previous'], [kid, 'active']], 'list: the previous key still accepted, the new one active');
  t.equal(await rejected(cluster, 'bad_seal'), 0, 'no message was dropped during the rotation');
});

/** Every value Redis holds (strings, hashes, lists), as raw bytes. */
async function everything(redis: Redis): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const key of await redis.keys('*')) {
    const type = await redis.type(key);
    if (type === 'string') out.push((await redis.getBuffer(key))!);
    else if (type === 'hash') out.push(...Object.values(await redis.hgetallBuffer(key)));
    else if (type === 'list') out.push(...await redis.lrangeBuffer(key, 0, -1));
  }
  return out;
}

t.test('retained and queued messages are sealed in Redis; a retained message written there by someone else is not delivered', async (t) => {
  const cluster = await startCluster(t, 'workers');
  const reader = await tap(t, cluster.redis.url);
  const [dev] = await cluster.provision(['seal-store']);
  const [obs] = await cluster.provision(['seal-store-obs'], 'observer');
  const devOpts = { clientId: dev!.deviceId, username: dev!.deviceId, password: dev!.accessToken, clean: false };
  const first = await cluster.connectOn(devOpts);
  await first.client!.subscribeAsync('devices/seal-store/commands/#', { qos: 1 });
  await first.client!.endAsync();
  const got: string[] = [];
  const o = await cluster.connectAway(first.place, { clientId: obs!.deviceId, username: obs!.deviceId, password: obs!.accessToken });
  t.teardown(() => o.client?.end(true));
  const [queued, retained] = [`queued-${randomBytes(8).toString('hex')}`, `retained-${randomBytes(8).toString('hex')}`];
  await o.client!.publishAsync('devices/seal-store/commands/q', queued, { qos: 1 });
  await o.client!.publishAsync('devices/seal-store/commands/legit', retained, { qos: 1, retain: true });
  await until('both stored in Redis', async () => (await reader.pub.llen('outgoing:seal-store')) >= 2 && (await reader.pub.hexists('retained', 'devices/seal-store/commands/legit')) === 1);
  const values = await everything(reader.pub);
  t.notOk(values.some((v) => v.includes(queued) || v.includes(retained)), `no value in Redis holds a payload in clear (${values.length} values read)`);

  // In aedes-persistence-redis' own format: a retained message for the device's commands.
  await reader.pub.hset('retained', 'devices/seal-store/commands/reboot', msgpack.encode({ cmd: 'publish', topic: 'devices/seal-store/commands/reboot', payload: Buffer.from('injected-retained'), qos: 0, retain: true, messageId: 0 }));
  const again = await cluster.connectOn(devOpts, 0, got);
  t.teardown(() => again.client?.end(true));
  await until('the queued message delivered on reconnect', () => got.includes(`devices/seal-store/commands/q ${queued}`));
  await again.client!.subscribeAsync('devices/seal-store/commands/#', { qos: 1 });
  await until('the legitimate retained message', () => got.includes(`devices/seal-store/commands/legit ${retained}`));
  await o.client!.publishAsync('devices/seal-store/commands/after', 'sentinel', { qos: 1 });
  await until('the sentinel', () => got.includes('devices/seal-store/commands/after sentinel'));
  t.notOk(got.some((m) => m.includes('injected-retained')), 'the retained message written into Redis was not delivered');
});
