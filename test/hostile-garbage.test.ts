// Garbage packets (SPEC "Bad input and faults": the broker never crashes on
// client input): random and mutated MQTT packets from a fixed seed over many raw
// TCP connections, while a valid device keeps publishing to an observer.
import t from 'tap';
import net from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { connectDevice, startTestBroker } from './helpers/broker.js';
import { connectPacket, pool, Rng, scrape, SOAK, sleep } from './helpers/hostile-util.js';

const SEED = Number(process.env.CREDBROKER_FUZZ_SEED ?? 20240611);
const CONNECTIONS = SOAK ? 5000 : 500;
const PER_CONNECTION = 200;
const PARALLEL = 25;
const FUZZ_DEVICES = 20;

function varint(n: number): number[] {
  const out: number[] = [];
  do { let b = n % 128; n = Math.floor(n / 128); if (n > 0) b |= 0x80; out.push(b); } while (n > 0 && out.length < 4);
  return out;
}

/** Generates well-formed packets and mutations of them, all from one seeded PRNG. */
class Fuzzer {
  constructor(readonly rng: Rng, readonly tokens: Map<string, string>) {}

  topic(own: string): string {
    const r = this.rng;
    return r.pick([
      `devices/${own}/telemetry`, `devices/${own}/events/${r.str(3)}`, `devices/other/telemetry`, '$SYS/broker/x', '#', '+/+',
      `$devices/${own}/token/renew`, `$devices/other/token/renew`, `devices/${own}/commands/x`, r.str(r.int(40) + 1), '', '/', '\u0000x', 'é/ü/🙂',
    ]);
  }

  valid(own: string): Packet {
    const r = this.rng;
    const messageId = r.int(65535) + 1;
    switch (r.int(11)) {
      case 0: {
        const topic = this.topic(own);
        const payload = topic.includes('/token/renew') && r.bool() ? Buffer.from(JSON.stringify({ requestId: r.str(8), ttlSeconds: r.pick([60, -1, 1e9, 'x']) })) : r.bytes(r.int(r.bool(0.05) ? 20_000 : 200));
        const qos = r.int(3) as 0 | 1 | 2;
        return { cmd: 'publish', topic, payload, qos, retain: r.bool(0.2), dup: r.bool(0.1), ...(qos > 0 ? { messageId } : {}) } as Packet;
      }
      case 1: return { cmd: 'subscribe', messageId, subscriptions: Array.from({ length: r.int(4) + 1 }, () => ({ topic: this.topic(own), qos: r.int(3) as 0 | 1 | 2 })) } as Packet;
      case 2: return { cmd: 'unsubscribe', messageId, unsubscriptions: [this.topic(own)] } as Packet;
      case 3: return { cmd: 'puback', messageId } as Packet;
      case 4: return { cmd: 'pubrec', messageId } as Packet;
      case 5: return { cmd: 'pubrel', messageId } as Packet;
      case 6: return { cmd: 'pubcomp', messageId } as Packet;
      case 7: return { cmd: 'pingreq' } as Packet;
      case 8: return { cmd: 'connack', returnCode: r.int(6), sessionPresent: r.bool() } as Packet;
      case 9: return { cmd: 'suback', messageId, granted: [r.int(3)] } as Packet;
      default: return r.bool(0.3) ? { cmd: 'disconnect' } as Packet : this.connect(own);
    }
  }

  connect(own: string): Packet {
    const r = this.rng;
    const id = r.bool(0.8) ? own : r.str(r.int(20));
    return {
      cmd: 'connect', protocolId: r.bool(0.9) ? 'MQTT' : r.pick(['MQIsdp', 'MQTX', '']), protocolVersion: r.pick([4, 4, 4, 3, 5, 7]) as 4,
      clean: r.bool(0.8), keepalive: r.int(5) === 0 ? 0 : r.int(120), clientId: id,
      username: r.bool(0.9) ? id : undefined, password: r.bool(0.9) ? Buffer.from(this.tokens.get(own) ?? 'x') : undefined,
      ...(r.bool(0.2) ? { will: { topic: this.topic(own), payload: r.bytes(r.int(50)), qos: r.int(3) as 0 | 1 | 2, retain: r.bool() } } : {}),
    } as Packet;
  }

  encode(p: Packet): Buffer {
    try {
      const b = mqttPacket.generate(p, { protocolVersion: 4 });
      return b.length > 0 ? b : this.rng.bytes(10);
    } catch {
      return this.rng.bytes(10); // mqtt-packet refused to encode this combination
    }
  }

  mutate(b: Buffer): Buffer {
    const r = this.rng;
    const c = Buffer.from(b);
    switch (r.int(7)) {
      case 0: { // flip bytes
        for (let i = r.int(4) + 1; i > 0 && c.length; i--) { const at = r.int(c.length); c[at] = c[at]! ^ (1 << r.int(8)); }
        return c;
      }
      case 1: { // lie about the remaining length
        let i = 1;
        while (i < c.length && (c[i]! & 0x80) && i < 4) i++;
        const lie = r.pick([0, 1, 127, 128, 16_383, 2_097_151, 268_435_455, r.int(c.length * 2 + 1)]);
        return Buffer.concat([c.subarray(0, 1), Buffer.from(varint(lie)), c.subarray(i + 1)]);
      }
      case 2: return c.subarray(0, r.int(c.length)); // cut
      case 3: return Buffer.concat([c, r.bytes(r.int(64) + 1)]); // trailing junk
      case 4: c[0] = r.int(256); return c; // random type and flags
      case 5: return Buffer.from([r.int(256), 0xff, 0xff, 0xff, 0xff, ...r.bytes(r.int(8))]); // malformed varint (5 bytes)
      default: return r.bytes(r.int(300) + 1); // random bytes
    }
  }
}

t.test(`fuzz: ${CONNECTIONS} connections × ${PER_CONNECTION} packets (seed ${SEED})`, async (t) => {
  const tb = await startTestBroker({ deniedPublish: 'drop', authFailBurst: 1_000_000, authFailPerSec: 1_000_000, deviceConnectBurst: 1_000_000, deviceConnectPerSec: 1_000_000 });
  t.teardown(() => tb.close());
  const port = tb.broker.ports.mqtt!;
  const [live, obs] = await tb.provision(['live-1', 'obs-1'].slice(0, 1)).then(async (a) => [...a, ...(await tb.provision(['obs-1'], 'observer'))]);
  const fuzzCreds = await tb.provision(Array.from({ length: FUZZ_DEVICES }, (_, i) => `fz-${i}`));
  const tokens = new Map(fuzzCreds.map((c) => [c.deviceId, c.accessToken]));
  // The verified-token cache warm (issue #12): every fuzz device's token accepted once before
  // the fuzz, so the fuzz's valid CONNECTs and its mutations of them meet the cache.
  for (const c of fuzzCreds) {
    const w = await connectDevice(tb.url, c);
    t.equal(w.code, 0, `warm-up: ${c.deviceId} accepted`);
    w.client?.end(true);
  }
  const cacheHits = () => scrape(tb.broker.ports.http!, 'credbroker_verified_token_cache_lookups_total', { result: 'hit' });
  const hitsBefore = await cacheHits();

  // The valid device publishes throughout; the observer counts what arrives.
  const o = await connectDevice(tb.url, obs!);
  const p = await connectDevice(tb.url, live!);
  t.equal(o.code, 0, 'observer connected');
  t.equal(p.code, 0, 'live device connected');
  let received = 0;
  let sent = 0;
  let liveClosed = 0;
  o.client!.on('message', (topic) => { if (topic === 'devices/live-1/telemetry') received++; });
  p.client!.on('close', () => liveClosed++);
  o.client!.on('close', () => liveClosed++);
  await o.client!.subscribeAsync('devices/+/telemetry', { qos: 1 });
  let publishing = true;
  const publisher = (async () => {
    while (publishing) {
      await p.client!.publishAsync('devices/live-1/telemetry', `n=${sent}`, { qos: 1 });
      sent++;
      await sleep(20);
    }
  })();

  const rssBefore = process.memoryUsage().rss;
  const rng = new Rng(SEED);
  const fz = new Fuzzer(rng, tokens);
  let packets = 0;
  let bytes = 0;
  let closedByBroker = 0;
  const t0 = performance.now();
  const windowStart = sent;
  await pool(Array.from({ length: CONNECTIONS }, (_, i) => i), PARALLEL, async (i) => {
    const own = `fz-${i % FUZZ_DEVICES}`;
    const kind = i % 10 < 4 ? 'authenticated' : i % 10 < 7 ? 'mutated-connect' : 'raw';
    const chunks: Buffer[] = [];
    if (kind === 'authenticated') chunks.push(connectPacket({ clientId: own, username: own, password: tokens.get(own)! }));
    if (kind === 'mutated-connect') chunks.push(fz.mutate(fz.encode(fz.connect(own))));
    while (chunks.length < PER_CONNECTION) {
      const pkt = fz.encode(fz.valid(own));
      chunks.push(kind === 'authenticated' && rng.bool(0.7) ? pkt : fz.mutate(pkt));
    }
    packets += chunks.length;
    await new Promise<void>((resolve) => {
      const sock = net.connect({ port, host: '127.0.0.1' });
      let done = false;
      const finish = () => { if (done) return; done = true; clearTimeout(timer); sock.destroy(); resolve(); };
      const timer = setTimeout(finish, 1500);
      sock.on('error', finish);
      sock.on('close', () => { if (!done) closedByBroker++; finish(); });
      sock.resume();
      sock.on('connect', async () => {
        // Write in batches of 20 packets so the broker parses them across several reads.
        for (let k = 0; k < chunks.length && !done; k += 20) {
          const batch = Buffer.concat(chunks.slice(k, k + 20));
          bytes += batch.length;
          sock.write(batch);
          await new Promise((r) => setImmediate(r));
        }
        setTimeout(finish, 100);
      });
    });
  });
  const seconds = (performance.now() - t0) / 1000;
  const sentDuring = sent - windowStart;
  await sleep(500);
  const rssAfter = process.memoryUsage().rss;
  publishing = false;
  await publisher;
  await sleep(300);

  t.comment(`${packets} packets (${(bytes / 1e6).toFixed(1)} MB written) over ${CONNECTIONS} connections in ${seconds.toFixed(1)} s; ${closedByBroker} connections closed by the broker before the client gave up`);
  t.comment(`live device: ${sent} publishes acked (${sentDuring} during the fuzz), observer received ${received}`);
  t.comment(`rss before ${(rssBefore / 1e6).toFixed(0)} MB, after ${(rssAfter / 1e6).toFixed(0)} MB`);
  t.ok(packets >= CONNECTIONS * PER_CONNECTION, `${packets} packets sent`);
  t.equal(liveClosed, 0, 'the valid device and the observer stayed connected throughout');
  t.ok(sentDuring >= Math.max(5, seconds * 5), `the valid device kept publishing during the fuzz (${sentDuring} in ${seconds.toFixed(1)} s)`);
  t.equal(received, sent, 'the observer received every acknowledged publish of the valid device');
  t.ok(rssAfter - rssBefore < 200e6, `memory bounded: rss grew ${((rssAfter - rssBefore) / 1e6).toFixed(0)} MB (< 200 MB)`);

  const after = await connectDevice(tb.url, fuzzCreds[0]!);
  t.equal(after.code, 0, 'a valid device connects after the fuzz (no crash, no wedge)');
  after.client?.end(true);
  await sleep(200);
  t.ok(tb.broker.context.sessions.size <= 2 + FUZZ_DEVICES, `no session leak (${tb.broker.context.sessions.size} live sessions)`);
  t.ok(await cacheHits() - hitsBefore > 0, `the fuzz ran with the cache warm (${await cacheHits() - hitsBefore} CONNECTs answered from it)`);
  p.client!.end(true);
  o.client!.end(true);
});
