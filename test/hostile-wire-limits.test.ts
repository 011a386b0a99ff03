// Packet size bounds (issue 10 #2) and ill-formed UTF-8 (#12), attacked from
// outside: the broker runs in a process of its own and its RSS is read from
// /proc while raw sockets announce packets far over the bounds and stream
// their bodies, over TCP and over WebSocket (many small frames).
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import mqtt from 'mqtt';
import { openIssuer, provisionDevices, type DeviceCredentials } from '../provisioning/index.js';
import { closed, connectDevice, startTestBroker } from './helpers/broker.js';
import { makeDevCerts } from './helpers/dev-certs.js';
import { connectPacket, hasCli, rssMiB, scrape, sleep, SOAK, spawnBrokerChild, type BrokerChild } from './helpers/hostile-util.js';
import { fixedHeader, floodTcp, floodTcpFresh, floodWs, rawSession, type FloodResult } from './helpers/raw-flood.js';
import { until } from './helpers/wait.js';
import { registryTargetIn } from './helpers/backend.js';

const MiB = 1024 * 1024;
/** Bytes each attacker streams behind its header: with no bound, all of it is buffered by the broker. */
const BUDGET = (SOAK ? 160 : 48) * MiB;
/** The soak repeats each attack for a minute (three attacks: three minutes). */
const REPEAT_MS = SOAK ? 60_000 : 0;
/**
 * The bound this test holds the broker to: its RSS may grow by at most this
 * much over its idle figure during the attacks. With the limits, an attacker
 * costs at most one socket read (64 KiB) or one WebSocket frame (≤ 260 KiB);
 * without them, each held its whole stream (4 × 48 MiB here).
 */
const RSS_GROWTH_BOUND_MIB = SOAK ? 128 : 64;
/**
 * The soak repeats an attack thousands of times (hundreds of connections a
 * second): the broker's working set for that churn levels off at 50–60 MiB
 * here within 10 s (the V8 heap sizes itself in steps). What must not happen is
 * growth after that: the peak of the last third of the minute may exceed the
 * peak of the middle third by at most this.
 */
const SOAK_TREND_BOUND_MIB = 24;

const env = { dir: '', devices: [] as DeviceCredentials[] };
let broker: BrokerChild;

t.before(async () => {
  env.dir = mkdtempSync(join(tmpdir(), 'credbroker-wire-'));
  const db = await registryTargetIn(env.dir);
  const issuer = await openIssuer(db);
  env.devices = (await provisionDevices(issuer, [{ line: 2, id: 'big-1' }, { line: 3, id: 'big-2' }], { profile: 'sensor', brokerUrl: 'mqtt://x' })).provisioned;
  env.devices.push(...(await provisionDevices(issuer, [{ line: 2, id: 'watch-1' }], { profile: 'observer', brokerUrl: 'mqtt://x' })).provisioned);
  issuer.reg.close();
  // maxPacketBytes: its default, 256 KiB. The soak reconnects one device hundreds of times.
  broker = await spawnBrokerChild(db, { wsPort: 0, deviceConnectBurst: 1_000_000, deviceConnectPerSec: 1_000_000 });
});
t.teardown(() => {
  broker?.child.kill('SIGKILL');
  rmSync(env.dir, { recursive: true, force: true });
});

/** Runs `round` once, or again and again for REPEAT_MS; collects every result. */
async function repeat<R>(round: () => Promise<R[]>): Promise<R[]> {
  const all: R[] = [];
  const t0 = Date.now();
  do all.push(...(await round())); while (Date.now() - t0 < REPEAT_MS);
  return all;
}

/**
 * Samples the broker's RSS every 50 ms while `attack` runs; returns its result,
 * the idle figure and the peak, and under the soak checks that RSS levelled off.
 */
async function watchRss<R>(t: Test, attack: () => Promise<R>): Promise<{ result: R; idle: number; peak: number }> {
  await sleep(300);
  const idle = rssMiB(broker.child.pid!)!;
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(rssMiB(broker.child.pid!) ?? 0), 50);
  try {
    const result = await attack();
    await sleep(300);
    samples.push(rssMiB(broker.child.pid!) ?? 0);
    if (SOAK) {
      const third = Math.floor(samples.length / 3);
      const middle = Math.max(...samples.slice(third, 2 * third)), late = Math.max(...samples.slice(2 * third));
      t.ok(late - middle <= SOAK_TREND_BOUND_MIB, `no growth while the attack repeats: last third's peak ${late.toFixed(0)} MiB against the middle third's ${middle.toFixed(0)} MiB (bound +${SOAK_TREND_BOUND_MIB} MiB)`);
    }
    return { result, idle, peak: Math.max(idle, ...samples) };
  } finally {
    clearInterval(timer);
  }
}

function allClosedEarly(t: Test, runs: FloodResult[], what: string): void {
  t.ok(runs.every((r) => r.closedByPeer), `${what}: every attacker was closed by the broker`);
  const maxSent = Math.max(...runs.map((r) => r.sent));
  t.ok(maxSent < BUDGET, `${what}: none got its ${BUDGET / MiB} MiB through (at most ${(maxSent / MiB).toFixed(1)} MiB written before the close)`);
}

t.test('oversized CONNECTs over TCP are closed at their fixed header', { skip: !hasCli() && 'dist/ not built' }, async (t) => {
  const before = await scrape(broker.httpPort, 'credbroker_packets_refused_total', { reason: 'connect_too_large' });
  // Four unauthenticated sockets at a time, each announcing a 150 MiB CONNECT.
  const { result: runs, idle, peak } = await watchRss(t, () => repeat(() =>
    Promise.all(Array.from({ length: 4 }, () => floodTcpFresh(broker.port, fixedHeader(0x10, 150 * MiB), BUDGET)))));
  allClosedEarly(t, runs, 'TCP CONNECT');
  t.ok(peak - idle <= RSS_GROWTH_BOUND_MIB, `broker RSS grew by ${(peak - idle).toFixed(0)} MiB (idle ${idle.toFixed(0)}, peak ${peak.toFixed(0)}; bound ${RSS_GROWTH_BOUND_MIB} MiB)`);
  const after = await scrape(broker.httpPort, 'credbroker_packets_refused_total', { reason: 'connect_too_large' });
  t.equal(after - before, runs.length, 'each closed connection counted in credbroker_packets_refused_total{reason="connect_too_large"}');
});

t.test('an oversized CONNECT over WebSocket, sent in many small frames, is closed at its header', { skip: !hasCli() && 'dist/ not built' }, async (t) => {
  const url = `ws://127.0.0.1:${broker.wsPort}`;
  const before = await scrape(broker.httpPort, 'credbroker_packets_refused_total', { reason: 'connect_too_large' });
  // Three connections at a time; each frame (4 KiB) is far under the frame cap, the packet far over the CONNECT bound.
  const { result: runs, idle, peak } = await watchRss(t, () => repeat(() =>
    Promise.all(Array.from({ length: 3 }, () => floodWs(url, fixedHeader(0x10, 150 * MiB), BUDGET / 4)))));
  t.ok(runs.every((r) => r.closedByPeer), 'WebSocket CONNECT: every attacker was closed by the broker');
  t.ok(Math.max(...runs.map((r) => r.sent)) < BUDGET / 4, 'WebSocket CONNECT: none got its stream through');
  t.ok(peak - idle <= RSS_GROWTH_BOUND_MIB, `broker RSS grew by ${(peak - idle).toFixed(0)} MiB (bound ${RSS_GROWTH_BOUND_MIB} MiB)`);
  const after = await scrape(broker.httpPort, 'credbroker_packets_refused_total', { reason: 'connect_too_large' });
  t.equal(after - before, runs.length, 'each counted in credbroker_packets_refused_total{reason="connect_too_large"}');
});

t.test('an authenticated 100 MiB retained PUBLISH is closed at its header; packets within maxPacketBytes pass', { skip: !hasCli() && 'dist/ not built' }, async (t) => {
  const [dev, dev2, watcher] = env.devices;
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const before = await scrape(broker.httpPort, 'credbroker_packets_refused_total', { reason: 'packet_too_large' });
  const topic = Buffer.from(`devices/${dev!.deviceId}/telemetry`);
  const head = Buffer.concat([fixedHeader(0x31, 100 * MiB), Buffer.from([topic.length >> 8, topic.length & 0xff]), topic]);
  const { result: runs, idle, peak } = await watchRss(t, () => repeat(async () => {
    const s = await rawSession(broker.port, connectPacket({ clientId: dev!.deviceId, username: dev!.deviceId, password: dev!.accessToken }));
    return [await floodTcp(s.sock, head, BUDGET)];
  }));
  allClosedEarly(t, runs, 'authenticated PUBLISH');
  t.ok(peak - idle <= RSS_GROWTH_BOUND_MIB, `broker RSS grew by ${(peak - idle).toFixed(0)} MiB (bound ${RSS_GROWTH_BOUND_MIB} MiB)`);
  const after = await scrape(broker.httpPort, 'credbroker_packets_refused_total', { reason: 'packet_too_large' });
  t.equal(after - before, runs.length, 'counted in credbroker_packets_refused_total{reason="packet_too_large"}');

  // Nothing of it was retained, and the limit does not bite below its bound, on TCP or WebSocket.
  const w = await connectDevice(url, watcher!);
  t.equal(w.code, 0, 'observer connects');
  const got: { topic: string; bytes: number; retain: boolean }[] = [];
  w.client!.on('message', (topic, payload, p) => got.push({ topic, bytes: payload.length, retain: p.retain }));
  await w.client!.subscribeAsync('devices/#', { qos: 1 });
  const near = 250 * 1024;
  const p = await connectDevice(url, dev!);
  await p.client!.publishAsync(`devices/${dev!.deviceId}/telemetry`, Buffer.alloc(near, 1), { qos: 1 });
  const viaWs = await mqtt.connectAsync(`ws://127.0.0.1:${broker.wsPort}`, { clientId: dev2!.deviceId, username: dev2!.deviceId, password: dev2!.accessToken, reconnectPeriod: 0, protocolVersion: 4 });
  await viaWs.publishAsync(`devices/${dev2!.deviceId}/telemetry`, Buffer.alloc(near, 2), { qos: 1 });
  for (let i = 0; i < 100 && got.length < 2; i++) await sleep(50);
  t.same(got.map((g) => [g.topic, g.bytes, g.retain]).sort(), [[`devices/${dev!.deviceId}/telemetry`, near, false], [`devices/${dev2!.deviceId}/telemetry`, near, false]],
    'a 250 KiB PUBLISH passes over TCP and over WebSocket (one frame); no retained 100 MiB message');

  // One byte over, from a well-behaved client: closed, not delivered.
  const over = closed(p.client!);
  p.client!.publish(`devices/${dev!.deviceId}/telemetry`, Buffer.alloc(256 * 1024, 3), { qos: 0 });
  t.ok(await Promise.race([over.then(() => true), sleep(10_000).then(() => false)]), 'a PUBLISH over maxPacketBytes from MQTT.js closes its connection');
  p.client!.end(true);
  // The sentinel, sent once that connection is gone: when it is here, the oversized one would have been too.
  await viaWs.publishAsync(`devices/${dev2!.deviceId}/telemetry`, 'last', { qos: 1 });
  await until('the sentinel', () => got.length > 2, 10_000);
  t.same(got.slice(2).map((g) => [g.topic, g.bytes]), [[`devices/${dev2!.deviceId}/telemetry`, 4]], 'and it was not delivered');
  await Promise.all([w.client!.endAsync(), viaWs.endAsync()]);
});

t.test('an oversized CONNECT over TLS is closed at its header too', async (t) => {
  const certs = makeDevCerts();
  t.teardown(() => certs.remove());
  const tb = await startTestBroker({ tlsPort: 0, tlsCert: certs.serverCert, tlsKey: certs.serverKey });
  t.teardown(() => tb.close());
  const sock = tls.connect({ port: tb.broker.ports.tls!, host: '127.0.0.1', servername: 'localhost', ca: readFileSync(certs.caCert) });
  sock.on('error', () => {});
  await new Promise((r) => sock.once('secureConnect', r));
  const r = await floodTcp(sock, fixedHeader(0x10, 150 * MiB), BUDGET);
  t.ok(r.closedByPeer && r.sent < BUDGET, `closed after ${(r.sent / MiB).toFixed(1)} of ${BUDGET / MiB} MiB`);
  const m = await tb.broker.context.metrics.packetsRefused.get();
  t.equal(m.values.find((v) => v.labels.reason === 'connect_too_large')?.value, 1, 'counted');
});

// ---------------------------------------------------------------- #12: ill-formed UTF-8

/** PUBLISH (QoS 0) with a topic given as raw bytes. */
function rawPublish(topic: Buffer, payload = Buffer.from('x')): Buffer {
  return Buffer.concat([fixedHeader(0x30, 2 + topic.length + payload.length), Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, payload]);
}
/** SUBSCRIBE (packet id 1, QoS 0) with a filter given as raw bytes. */
function rawSubscribe(filter: Buffer): Buffer {
  return Buffer.concat([fixedHeader(0x82, 2 + 2 + filter.length + 1), Buffer.from([0, 1, filter.length >> 8, filter.length & 0xff]), filter, Buffer.from([0])]);
}

t.test('a topic or filter that is not well-formed UTF-8 closes the connection (MQTT 3.1.1 §1.5.3)', async (t) => {
  const tb = await startTestBroker({ deniedPublish: 'drop' });
  t.teardown(() => tb.close());
  const [dev] = await tb.provision(['utf-1']);
  const [obs] = await tb.provision(['utf-obs'], 'observer');
  const o = await connectDevice(tb.url, obs!);
  const got: string[] = [];
  o.client!.on('message', (topic) => got.push(topic));
  await o.client!.subscribeAsync('devices/#', { qos: 0 });
  const port = tb.broker.ports.mqtt!;
  const session = () => rawSession(port, connectPacket({ clientId: dev!.deviceId, username: dev!.deviceId, password: dev!.accessToken }));
  const prefix = `devices/${dev!.deviceId}/events/`;
  const bad = Buffer.from([0xff, 0xfe, 0xc0, 0xaf]);
  const refused = () => tb.broker.context.metrics.packetsRefused.get().then((m) => m.values.find((v) => v.labels.reason === 'invalid_utf8')?.value ?? 0);

  const cases: [string, Buffer][] = [
    ['PUBLISH topic with FF FE C0 AF', rawPublish(Buffer.concat([Buffer.from(prefix), bad]))],
    ['PUBLISH topic with an overlong encoding (C0 AF)', rawPublish(Buffer.concat([Buffer.from(prefix), Buffer.from([0x61, 0xc0, 0xaf])]))],
    ['PUBLISH topic with U+0000', rawPublish(Buffer.from(`${prefix}a\u0000b`))],
    ['SUBSCRIBE filter with FF FE C0 AF', rawSubscribe(Buffer.concat([Buffer.from(`devices/${dev!.deviceId}/commands/`), bad]))],
  ];
  for (const [what, packet] of cases) {
    const s = await session();
    const n0 = await refused();
    s.sock.write(packet);
    const when = await Promise.race([s.closed, sleep(5000).then(() => null)]);
    t.ok(when !== null, `${what}: connection closed`);
    t.equal(await refused(), n0 + 1, `${what}: counted in credbroker_packets_refused_total{reason="invalid_utf8"}`);
    s.sock.destroy();
  }

  // Well-formed UTF-8 still flows, U+FFFD written as its own three bytes included.
  const s = await session();
  const good = `${prefix}é/🙂/\uFFFD`;
  s.sock.write(rawPublish(Buffer.from(good)));
  for (let i = 0; i < 100 && !got.includes(good); i++) await sleep(50);
  t.same(got, [good], 'only the well-formed topic was delivered');
  s.sock.destroy();
  await o.client!.endAsync();
});
