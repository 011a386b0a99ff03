// A clean CONNECT to a worker on the bus makes one round trip to Redis (issue 23,
// item 2): one command, the script that claims the client id and drops a previous
// persistent session of it (cluster/ownership.ts claimClean); its disconnect one
// more (the claim's release). Counted with MONITOR on a real redis-server, between
// sentinels (an ECHO from the test's own connection), so that no sleep decides
// what was sent.
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import { provisionDevices } from '../provisioning/index.js';
import { connect, connectDevice } from './helpers/broker.js';
import { until } from './helpers/cluster.js';
import { startRedis } from './helpers/redis.js';
import { startServe, type ServeProcess } from './helpers/serve-process.js';
import { within } from './helpers/wait.js';

type Seen = { args: string[]; source: string };

/** Every command Redis runs from now on (MONITOR), the test's own connections' apart. */
async function watch(t: Test, url: string) {
  const own = new Redis(url);
  const base = new Redis(url);
  const mon = await base.monitor(); // a connection of its own, beside `base`
  // Redis stops before these in the teardown: their reconnect attempts are no failure.
  for (const c of [own, base, mon]) c.on('error', () => {});
  t.teardown(() => { for (const c of [own, base, mon]) c.disconnect(); });
  const ownAddr = / addr=(\S+)/.exec((await own.client('INFO')) as string)![1];
  let seen: Seen[] = [];
  let marks = 0;
  const waiting = new Map<string, () => void>();
  mon.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === ownAddr) {
      if (args[0]?.toLowerCase() === 'echo') waiting.get(args[1]!)?.();
      return;
    }
    seen.push({ args, source });
  });
  return {
    /** The commands seen since the last call, up to a sentinel that Redis ran after them. */
    async take(): Promise<Seen[]> {
      const mark = `sentinel-${++marks}`;
      const heard = new Promise<void>((r) => waiting.set(mark, r));
      await own.echo(mark);
      await within(`MONITOR to show ${mark}`, heard, 10_000);
      const out = seen;
      seen = [];
      return out;
    },
    redis: own,
  };
}

/**
 * Commands a client sent (MONITOR shows a script's own calls apart, from "lua"); the claims'
 * renewal every 10 s, the bus' PING every second (is Redis answering?) and its reads and writes
 * of the brokers' subscription roots (bus-interest.ts, several a second) are per broker, not per CONNECT.
 */
const PER_BROKER = new Set(['pexpire', 'ping']);
const perBroker = (x: Seen) => PER_BROKER.has(x.args[0]?.toLowerCase() ?? '') || (x.args[3]?.startsWith('credbroker:interest') ?? false);
const sent = (xs: Seen[]) => xs.filter((x) => x.source !== 'lua' && !perBroker(x));
/** Command names; a script is `script`, run by its SHA or, the first time, by its text (MONITOR does not show the EVALSHA refused as NOSCRIPT). */
const names = (xs: Seen[]) => xs.map((x) => x.args[0]!.toLowerCase()).map((n) => (n === 'evalsha' || n === 'eval' ? 'script' : n));

// MONITOR starts before the node: ioredis fails ("Command queue state error") on a monitored command that arrives with MONITOR's own reply.
async function node(t: Test): Promise<{ serve: ServeProcess; url: string; m: Awaited<ReturnType<typeof watch>> }> {
  const redis = await startRedis(t);
  const m = await watch(t, redis.url);
  const serve = await startServe(['--workers', '1', '--bus', redis.url, '--log-format', 'json'], { CREDBROKER_DEVICE_CONNECT_BURST: '1000' });
  t.teardown(() => serve.stop());
  return { serve, url: `mqtt://127.0.0.1:${serve.mqttPort}`, m };
}

t.test('a clean CONNECT sends one command to Redis (one round trip), its disconnect one', async (t) => {
  const { serve, url, m } = await node(t);
  const ids = Array.from({ length: 20 }, (_, i) => `clean-${i}`);
  const devs = await serve.provision(['warm', ...ids]);
  // The first CONNECT loads the script into Redis (NOSCRIPT, then EVAL): not counted.
  const warm = await connectDevice(url, devs[0]!);
  warm.client!.end(true);
  await until('the warm-up claim released', async () => (await m.redis.exists('credbroker:owner:warm')) === 0);
  await m.take();

  const clients: MqttClient[] = [];
  t.teardown(() => { for (const c of clients) c.end(true); });
  for (const dev of devs.slice(1)) {
    const c = await connectDevice(url, dev);
    t.equal(c.code, 0, `${dev.deviceId} connects`);
    clients.push(c.client!);
  }
  const atConnect = sent(await m.take());
  t.equal(atConnect.length, ids.length, `${ids.length} clean CONNECTs, ${atConnect.length} commands: ${[...new Set(names(atConnect))].join(', ')}`);
  t.same([...new Set(names(atConnect))], ['script'], 'each one script');
  t.same(atConnect.map((x) => x.args[3]).sort(), ids.map((id) => `credbroker:owner:${id}`).sort(), 'one per client id, naming its claim');

  for (const c of clients) c.end(true);
  await until('every claim released', async () => (await m.redis.exists(...ids.map((id) => `credbroker:owner:${id}`))) === 0);
  const atClose = sent(await m.take());
  t.equal(atClose.length, ids.length, `${ids.length} disconnects, ${atClose.length} commands: ${[...new Set(names(atClose))].join(', ')}`);
  t.same([...new Set(names(atClose))], ['script'], 'each the release of its claim');
});

t.test('a clean CONNECT drops a previous persistent session of its id in that one command', async (t) => {
  const { serve, url, m } = await node(t);
  const [dev] = await serve.provision(['resumed']);
  const filter = `devices/${dev!.deviceId}/commands/#`;
  const persistent = await connectDevice(url, dev!, { clean: false });
  await persistent.client!.subscribeAsync(filter, { qos: 1 });
  persistent.client!.end(true);
  await until('the persistent session stored', async () => (await m.redis.sismember('clients', dev!.deviceId)) === 1 && (await m.redis.exists('credbroker:owner:resumed')) === 0);
  t.ok(await m.redis.exists('client:resumed'), 'its subscriptions are in Redis');
  await m.take();

  const clean = await connectDevice(url, dev!);
  t.equal(clean.code, 0, 'the clean CONNECT succeeds');
  const atConnect = sent(await m.take());
  t.same(names(atConnect).filter((n) => n !== 'publish'), ['script'], `one command to the store (${names(atConnect).join(', ')}; a PUBLISH on the bus tells the other brokers the subscriptions are gone)`);
  t.equal(await m.redis.exists('client:resumed', 'outgoing:resumed', 'incoming:resumed'), 0, 'the previous session is gone from Redis');
  t.equal(await m.redis.sismember('clients', dev!.deviceId), 0, 'and from the set of sessions');
  clean.client!.end(true);
  await until('the clean claim released', async () => (await m.redis.exists('credbroker:owner:resumed')) === 0);

  let present: boolean | null = null;
  const again = await connect(url, { clientId: dev!.deviceId, username: dev!.deviceId, password: dev!.accessToken, clean: false },
    (c) => c.once('connect', (ack) => { present = ack.sessionPresent; }));
  t.teardown(() => again.client?.end(true));
  t.equal(again.code, 0, 'a persistent CONNECT afterwards succeeds');
  t.equal(present, false, 'and finds no session present');
});

t.test('QoS 2 from a clean session is received once, its receipt kept in the worker', async (t) => {
  const { serve, url, m } = await node(t);
  const [sender] = await serve.provision(['q2-sender']);
  const [observer] = (await provisionDevices(serve.issuer, [{ line: 2, id: 'q2-observer' }], { profile: 'observer', brokerUrl: url })).provisioned;
  const obs = await connectDevice(url, observer!);
  t.teardown(() => obs.client?.end(true));
  const got: string[] = [];
  obs.client!.on('message', (_topic, payload) => got.push(payload.toString()));
  const granted = await obs.client!.subscribeAsync(`devices/${sender!.deviceId}/telemetry`, { qos: 2 });
  t.equal(granted[0]!.qos, 2, 'the observer subscribes');
  const snd = await connectDevice(url, sender!);
  t.teardown(() => snd.client?.end(true));
  await m.take();
  await snd.client!.publishAsync(`devices/${sender!.deviceId}/telemetry`, 'once', { qos: 2 });
  await snd.client!.publishAsync(`devices/${sender!.deviceId}/telemetry`, 'sentinel', { qos: 2 });
  await until('both delivered', () => got.includes('sentinel'));
  t.same(got, ['once', 'sentinel'], 'each delivered once');
  const store = names(sent(await m.take())).filter((n) => /^h(set|get|del)/.test(n));
  t.same(store, [], 'no QoS 2 receipt went to Redis');
});
