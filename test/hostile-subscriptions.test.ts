// Subscriptions per connection are capped (issue 10, item 9: one client was
// granted 50,000 filters, +93 MiB): beyond `maxSubscriptionsPerConnection`
// (default 100) a new filter gets SUBACK 0x80 and the refusal is counted.
import t from 'tap';
import type { MqttClient } from 'mqtt';
import { DEFAULT_CONFIG } from '../broker/index.js';
import { connectDevice, startTestBroker, subscribeGranted } from './helpers/broker.js';
import { scrape, SOAK } from './helpers/hostile-util.js';
import { until } from './helpers/wait.js';

const CAP = DEFAULT_CONFIG.maxSubscriptionsPerConnection;
const ATTEMPTS = SOAK ? 50_000 : 2_000;

/** One SUBSCRIBE packet with several filters; resolves with the granted QoS per filter (128 = refused). */
function subscribeMany(client: MqttClient, filters: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(filters, { qos: 1 }, (err, granted) => {
      const refused = (err as (Error & { packet?: { granted?: number[] } }) | null)?.packet?.granted;
      if (refused) return resolve(refused);
      if (err) return reject(err);
      resolve(granted!.map((g) => g.qos));
    });
  });
}

t.test(`default cap: ${CAP} filters per connection, then SUBACK 0x80`, async (t) => {
  t.equal(CAP, 100, 'default maxSubscriptionsPerConnection');
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const [obs] = await tb.provision(['sub-cap-observer'], 'observer');
  const c = await connectDevice(tb.url, obs!);
  t.equal(c.code, 0);
  const client = c.client!;
  t.teardown(() => client.end(true));

  const filters = Array.from({ length: CAP }, (_, i) => `devices/d${i}/telemetry`);
  for (let i = 0; i < CAP; i += 25) {
    t.same(await subscribeMany(client, filters.slice(i, i + 25)), Array(25).fill(1), `filters ${i + 1}–${i + 25} granted`);
  }
  t.equal(await subscribeGranted(client, 'devices/one-too-many/telemetry'), 128, `filter ${CAP + 1}: SUBACK 0x80`);
  t.equal(await subscribeGranted(client, filters[0]!), 1, 're-subscribing to a held filter is granted');
  t.equal(await scrape(tb.broker.ports.http!, 'credbroker_limit_refusals_total', { limit: 'subscriptions_per_connection' }), 1, 'the refusal is counted');

  await client.unsubscribeAsync([filters[0]!, filters[1]!]);
  t.same(await subscribeMany(client, ['devices/new-a/telemetry', 'devices/new-b/telemetry', 'devices/new-c/telemetry']), [1, 1, 128],
    'after unsubscribing two, one packet of three: two granted, the third refused');

  // The refused filter really was not subscribed: nothing published there reaches the client. The sentinel, sent
  // after it by the same device, goes to a filter the client holds (in place of one it gives up).
  await client.unsubscribeAsync('devices/new-b/telemetry');
  t.equal(await subscribeGranted(client, 'devices/one-too-many/events/#'), 1, 'a filter for the sentinel');
  const [pub] = await tb.provision(['one-too-many']);
  const p = await connectDevice(tb.url, pub!);
  const got: string[] = [];
  client.on('message', (topic) => got.push(topic));
  await p.client!.publishAsync('devices/one-too-many/telemetry', 'x', { qos: 1 });
  await p.client!.publishAsync('devices/one-too-many/events/last', 'x', { qos: 1 });
  await until('the sentinel', () => got.length > 0, 10_000);
  t.same(got, ['devices/one-too-many/events/last'], 'no delivery on the refused filter');
  p.client!.end(true);
});

t.test('the cap holds for a persistent session, within one SUBSCRIBE packet and after resuming', async (t) => {
  const tb = await startTestBroker({ maxSubscriptionsPerConnection: 5 });
  t.teardown(() => tb.close());
  const [obs] = await tb.provision(['sub-cap-persistent'], 'observer');
  const c = await connectDevice(tb.url, obs!, { clean: false });
  t.equal(c.code, 0);
  const filters = Array.from({ length: 8 }, (_, i) => `devices/p${i}/telemetry`);
  t.same(await subscribeMany(c.client!, filters), [1, 1, 1, 1, 1, 128, 128, 128], 'one packet of 8 filters: 5 granted, 3 refused');
  c.client!.end(true);
  await new Promise((r) => setTimeout(r, 200));
  const again = await connectDevice(tb.url, obs!, { clean: false });
  t.equal(again.code, 0, 'resumes the persistent session');
  t.equal(await subscribeGranted(again.client!, 'devices/p-extra/telemetry'), 128, 'the 5 restored filters count: a 6th is refused');
  t.equal(await subscribeGranted(again.client!, filters[4]!), 1, 'a restored filter can be re-subscribed');
  again.client!.end(true);
});

t.test(`${ATTEMPTS} distinct filters from one client: only ${CAP} are held`, async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const [obs] = await tb.provision(['sub-cap-flood'], 'observer');
  const c = await connectDevice(tb.url, obs!);
  const client = c.client!;
  t.teardown(() => client.end(true));
  let granted = 0;
  const batch = 100;
  for (let i = 0; i < ATTEMPTS; i += batch) {
    const qos = await subscribeMany(client, Array.from({ length: batch }, (_, j) => `devices/f${i + j}/telemetry`));
    granted += qos.filter((q) => q !== 128).length;
  }
  t.equal(granted, CAP, `${granted} of ${ATTEMPTS} granted`);
  t.equal(await scrape(tb.broker.ports.http!, 'credbroker_limit_refusals_total', { limit: 'subscriptions_per_connection' }), ATTEMPTS - CAP, 'every refusal counted');
  const held = Object.keys((tb.broker.context.aedes as unknown as { clients: Record<string, { subscriptions: object }> }).clients['sub-cap-flood']!.subscriptions).length;
  t.equal(held, CAP, `aedes holds ${held} subscriptions for the client`);
  t.ok(client.connected, 'the client stays connected (refusal is not a protocol error)');
});
