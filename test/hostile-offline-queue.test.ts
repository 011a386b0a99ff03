// An offline persistent session's queue is bounded (issue 10 #3 follow-up): an
// observer subscribed to devices/# at QoS 1 with clean=false goes away while a
// device keeps publishing. aedes stores every message for it; past
// maxQueuedMessages / maxQueuedBytes the newer ones are dropped and counted, the
// oldest kept (Mosquitto's max_queued_messages).
import t from 'tap';
import mqtt, { type MqttClient } from 'mqtt';
import { connect, connectDevice, startTestBroker, type TestBroker } from './helpers/broker.js';
import { until } from './helpers/wait.js';
import { scrape, sleep } from './helpers/hostile-util.js';
import type { DeviceCredentials } from '../provisioning/index.js';

const BOUND = 100;

/** The observer's persistent session: subscribe at QoS 1, then leave. */
async function subscribeAndLeave(url: string, o: DeviceCredentials): Promise<void> {
  const c = (await connectDevice(url, o, { clean: false })).client!;
  await c.subscribeAsync('devices/#', { qos: 1 });
  await c.endAsync();
}

/** Comes back with clean=false and counts what arrives until 3 s pass with nothing new. */
function comeBack(url: string, o: DeviceCredentials): Promise<{ client: MqttClient; payloads: string[]; sessionPresent: boolean }> {
  return new Promise((resolve, reject) => {
    const payloads: string[] = [];
    const client = mqtt.connect(url, { clientId: o.deviceId, username: o.deviceId, password: o.accessToken, clean: false, reconnectPeriod: 0, protocolVersion: 4 });
    // Attached before CONNACK: the stored queue follows it at once.
    client.on('message', (_topic, payload) => { payloads.push(payload.toString()); });
    client.once('error', reject);
    client.once('connect', async (connack) => {
      let seen = -1;
      while (seen !== payloads.length) { seen = payloads.length; await sleep(3000); }
      resolve({ client, payloads, sessionPresent: connack.sessionPresent });
    });
  });
}

async function publishMany(url: string, d: DeviceCredentials, n: number, from = 0, payload = (i: number) => `m${i}`): Promise<void> {
  const c = (await connectDevice(url, d)).client!;
  for (let i = from; i < from + n; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, from + n - i) }, (_, k) => c.publishAsync(`devices/${d.deviceId}/telemetry`, payload(i + k), { qos: 1 })));
  }
  await c.endAsync();
}

const dropped = (tb: TestBroker, reason: string) => scrape(tb.broker.ports.http!, 'credbroker_outbound_dropped_total', { reason });

t.test('3,000 messages for an offline observer: it gets the oldest BOUND, the rest are counted as dropped; the count does not drift', async (t) => {
  const tb = await startTestBroker({ maxQueuedMessages: BOUND });
  t.teardown(() => tb.close());
  const [obs] = await tb.provision(['offq-obs'], 'observer');
  const [dev] = await tb.provision(['offq-dev']);
  await subscribeAndLeave(tb.url, obs!);

  await publishMany(tb.url, dev!, 3000);
  const back = await comeBack(tb.url, obs!);
  t.ok(back.sessionPresent, 'the session was kept');
  t.equal(back.payloads.length, BOUND, `the observer receives the bound (${BOUND}) and no more`);
  t.same(back.payloads.slice(0, 3), ['m0', 'm1', 'm2'], 'the oldest are the ones kept');
  t.equal(await dropped(tb, 'offline_messages'), 3000 - BOUND, 'the rest counted in credbroker_outbound_dropped_total{reason="offline_messages"}');
  await back.client.endAsync();

  // Delivered and acknowledged: the queue is empty again, so a second absence gets the whole bound.
  await publishMany(tb.url, dev!, BOUND, 5000);
  const again = await comeBack(tb.url, obs!);
  t.equal(again.payloads.length, BOUND, 'after the acks the count started from zero again: a full bound is stored');
  t.equal(again.payloads[0], 'm5000', 'and it is the new messages');
  await again.client.endAsync();
});

t.test('a queue under the bound is delivered whole, in order (no regression)', async (t) => {
  const tb = await startTestBroker({ maxQueuedMessages: BOUND });
  t.teardown(() => tb.close());
  const [obs] = await tb.provision(['offq-obs2'], 'observer');
  const [dev] = await tb.provision(['offq-dev2']);
  await subscribeAndLeave(tb.url, obs!);
  await publishMany(tb.url, dev!, BOUND / 2);
  const back = await comeBack(tb.url, obs!);
  t.same(back.payloads, Array.from({ length: BOUND / 2 }, (_, i) => `m${i}`), 'every message, in order');
  t.equal(await dropped(tb, 'offline_messages') + await dropped(tb, 'offline_bytes'), 0, 'nothing dropped');
  await back.client.endAsync();
});

t.test('the byte bound: 1 KiB messages past maxQueuedBytes are dropped and counted', async (t) => {
  const tb = await startTestBroker({ maxQueuedMessages: 10_000, maxQueuedBytes: 64 * 1024, maxPacketBytes: 64 * 1024 });
  t.teardown(() => tb.close());
  const [obs] = await tb.provision(['offq-obs3'], 'observer');
  const [dev] = await tb.provision(['offq-dev3']);
  await subscribeAndLeave(tb.url, obs!);
  const kib = (i: number) => `${i}`.padEnd(1024, '.');
  await publishMany(tb.url, dev!, 200, 0, kib);
  const back = await comeBack(tb.url, obs!);
  t.ok(back.payloads.length > 0 && back.payloads.length < 64, `the observer receives what fits in 64 KiB (${back.payloads.length} of 200)`);
  t.equal(await dropped(tb, 'offline_bytes'), 200 - back.payloads.length, 'the rest counted as offline_bytes');
  await back.client.endAsync();
});

/** Connects `o` with clean=false and resolves once `n` messages have arrived (deadline 15 s); `payloads` keeps filling after. */
async function collect(url: string, o: DeviceCredentials, n: number): Promise<{ client: MqttClient; payloads: string[]; closes: () => number }> {
  const payloads: string[] = [];
  let closes = 0;
  const { client } = await connect(url, { clientId: o.deviceId, username: o.deviceId, password: o.accessToken, clean: false, reconnectPeriod: 0, protocolVersion: 4 }, (c) => {
    c.on('message', (_topic, payload) => { payloads.push(payload.toString()); });
    c.on('close', () => { closes++; });
  });
  await until(`${n} stored messages for ${o.deviceId}`, () => payloads.length >= n, 15_000);
  return { client: client!, payloads, closes: () => closes };
}

t.test('QoS 2 messages stored for an offline session: delivered on return, the connection stays up, and the bound counts them out again', async (t) => {
  const tb = await startTestBroker({ maxQueuedMessages: 2 });
  t.teardown(() => tb.close());
  const [obs] = await tb.provision(['offq-obs4'], 'observer');
  const [dev] = await tb.provision(['offq-dev4']);
  const sub = (await connectDevice(tb.url, obs!, { clean: false })).client!;
  await sub.subscribeAsync('devices/#', { qos: 2 });
  await sub.endAsync();

  const publish = async (...payloads: string[]) => {
    const c = (await connectDevice(tb.url, dev!)).client!;
    for (const p of payloads) await c.publishAsync(`devices/${dev!.deviceId}/telemetry`, p, { qos: 2 });
    await c.endAsync();
  };
  await publish('q0', 'q1');
  const back = await collect(tb.url, obs!, 2);
  t.same(back.payloads, ['q0', 'q1'], 'both stored QoS 2 messages arrive (PUBREC, PUBREL, PUBCOMP for each)');
  // The sentinel: a live message after the two PUBCOMPs, on the same connection.
  await publish('live');
  await until('the live message after the stored ones', () => back.payloads.includes('live'), 15_000);
  t.equal(back.closes(), 0, 'the broker kept the connection open after the PUBCOMPs');
  await back.client.endAsync();

  // Each PUBCOMP took its message out of the count: a second absence stores a whole bound again.
  await publish('q2', 'q3');
  const again = await collect(tb.url, obs!, 2);
  t.same(again.payloads, ['q2', 'q3'], 'the next two stored messages arrive: the count went back to zero');
  t.equal(await dropped(tb, 'offline_messages'), 0, 'nothing was dropped');
  await again.client.endAsync();
});
