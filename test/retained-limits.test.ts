import t from 'tap';
import type { MqttClient } from 'mqtt';
import { revokeDevices } from '../operations/index.js';
import type { DeviceId } from '../registry/index.js';
import { connectDevice, startTestBroker, type TestBroker } from './helpers/broker.js';
import { runCli } from './helpers/cli.js';
import { hasCli } from './helpers/hostile-util.js';
import { until } from './helpers/wait.js';

// Issue 10 #8: retained messages are capped per device (count, bytes, payload size), and
// revoking a device clears the retained messages it published unless --keep-retained.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The retained messages a new subscriber to `filter` gets: topic → payload length. */
async function retainedFor(tb: TestBroker, observer: { deviceId: string; accessToken: string }, filter: string): Promise<Map<string, number>> {
  const { client } = await connectDevice(tb.url, observer);
  const got = new Map<string, number>();
  client!.on('message', (topic, payload, packet) => { if (packet.retain) got.set(topic, payload.length); });
  await client!.subscribeAsync(filter, { qos: 1 });
  await sleep(400);
  await client!.endAsync();
  return got;
}

async function publishRetained(c: MqttClient, topic: string, bytes: number): Promise<void> {
  await c.publishAsync(topic, Buffer.alloc(bytes, 0x61), { qos: 1, retain: true });
}

t.test('retained messages per device', async (t) => {
  const tb = await startTestBroker({ maxRetainedPerDevice: 3, maxRetainedBytesPerDevice: 1000, maxRetainedPayloadBytes: 400 });
  t.teardown(() => tb.close());
  const [ops] = await tb.provision(['ret-ops'], 'observer');
  const devices = await tb.provision(['ret-1', 'ret-2', 'ret-3', 'ret-4', 'ret-5']);
  const clients = new Map<string, MqttClient>();
  for (const d of devices) clients.set(d.deviceId, (await connectDevice(tb.url, d)).client!);
  t.teardown(() => { for (const c of clients.values()) c.end(true); });
  const limit = async (name: string) => Number(new RegExp(`credbroker_limit_refusals_total\\{limit="${name}"\\} (\\d+)`).exec(await tb.broker.context.metrics.registry.metrics())?.[1] ?? 0);
  // The broker counts a clear once aedes' persistence has deleted the messages: after that no subscriber can get them.
  const clearedTotal = async () => Number(/credbroker_retained_cleared_total (\d+)/.exec(await tb.broker.context.metrics.registry.metrics())?.[1] ?? 0);
  /** Waits until the broker has applied the revocations (and cleared `total` retained messages in all): not a guessed time. */
  const applied = (ids: string[], total: number) => until(`the broker to apply the revocation of ${ids.join(', ')} (${total} retained cleared in all)`,
    async () => ids.every((id) => tb.broker.context.revocation.isDeviceRevoked(id)) && await clearedTotal() === total, 10_000);

  t.test('capped by count: the newest retained topics past the cap are delivered but not kept', async (t) => {
    const c = clients.get('ret-1')!;
    for (const x of ['a', 'b', 'c', 'd', 'e']) await publishRetained(c, `devices/ret-1/events/${x}`, 10);
    await publishRetained(c, 'devices/ret-1/events/a', 20); // replacing its own message does not count twice
    const got = await retainedFor(tb, ops!, 'devices/ret-1/#');
    t.same([...got.entries()].sort(), [['devices/ret-1/events/a', 20], ['devices/ret-1/events/b', 10], ['devices/ret-1/events/c', 10]], 'three kept (a replaced)');
    t.equal(await limit('retained_count'), 2, 'the two over the cap are counted');
    await c.publishAsync('devices/ret-1/events/b', Buffer.alloc(0), { qos: 1, retain: true }); // deleting one makes room
    await publishRetained(c, 'devices/ret-1/events/d', 10);
    t.same([...(await retainedFor(tb, ops!, 'devices/ret-1/#')).keys()].sort(), ['devices/ret-1/events/a', 'devices/ret-1/events/c', 'devices/ret-1/events/d']);
  });

  t.test('capped by payload size and by bytes per device', async (t) => {
    await publishRetained(clients.get('ret-2')!, 'devices/ret-2/events/big', 500);
    t.equal((await retainedFor(tb, ops!, 'devices/ret-2/#')).size, 0, 'a 500-byte payload over the 400-byte cap is not kept');
    t.equal(await limit('retained_payload'), 1);
    const c = clients.get('ret-3')!;
    for (const x of ['a', 'b', 'c']) await publishRetained(c, `devices/ret-3/events/${x}`, 350);
    t.same([...(await retainedFor(tb, ops!, 'devices/ret-3/#')).keys()].sort(), ['devices/ret-3/events/a', 'devices/ret-3/events/b'], '700 bytes kept; the third would make 1,050 > 1,000');
    t.equal(await limit('retained_bytes'), 1);
  });

  t.test('revoke clears the retained messages the device published; --keep-retained keeps them', async (t) => {
    const opsClient = (await connectDevice(tb.url, ops!)).client!;
    t.teardown(() => opsClient.end(true));
    await publishRetained(opsClient, 'devices/ret-4/commands/mode', 5); // owned by the observer, not by ret-4
    for (const id of ['ret-4', 'ret-5']) {
      for (const x of ['a', 'b']) await publishRetained(clients.get(id)!, `devices/${id}/events/${x}`, 10);
    }
    t.equal((await retainedFor(tb, ops!, 'devices/ret-4/#')).size, 3);
    const [r4] = await revokeDevices(tb.issuer.reg, ['ret-4' as DeviceId], 'stolen'); // as the CLI does: through the registry
    const [r5] = await revokeDevices(tb.issuer.reg, ['ret-5' as DeviceId], 'decommissioned', 'cli', Date.now(), { keepRetained: true });
    t.ok(r4!.retainedCleared);
    t.notOk(r5!.retainedCleared);
    await applied(['ret-4', 'ret-5'], 2);
    t.same([...(await retainedFor(tb, ops!, 'devices/ret-4/#')).keys()], ['devices/ret-4/commands/mode'], 'ret-4\'s own retained messages are gone; the observer\'s command to it stays');
    t.equal((await retainedFor(tb, ops!, 'devices/ret-5/#')).size, 2, 'ret-5 (--keep-retained): kept');
    t.match(await tb.broker.context.metrics.registry.metrics(), /credbroker_retained_cleared_total 2/);
    t.match((await tb.issuer.reg.audit.query({ deviceId: 'ret-4' })).find((e) => e.action === 'device.revoke')?.details, { retained: 'cleared' });
    await revokeDevices(tb.issuer.reg, ['ret-5' as DeviceId], 'decommissioned'); // again, without --keep-retained: cleared now
    await applied(['ret-5'], 4);
    t.equal((await retainedFor(tb, ops!, 'devices/ret-5/#')).size, 0, 'revoking again without --keep-retained clears them');
  });

  t.test('credbroker revoke, in another process: --keep-retained, then without it', { skip: !hasCli() && 'dist/ not built' }, async (t) => {
    const [d] = await tb.provision(['ret-6']);
    const c = (await connectDevice(tb.url, d!)).client!;
    t.teardown(() => c.end(true));
    await publishRetained(c, 'devices/ret-6/events/state', 10);
    const kept = await runCli(['revoke', 'ret-6', '--keep-retained', '--json', '--db', tb.db]);
    t.equal(kept.code, 0, kept.stderr);
    t.match(JSON.parse(kept.stdout), { devices: [{ deviceId: 'ret-6', revoked: true, retainedCleared: false }] });
    await applied(['ret-6'], 4);
    t.equal((await retainedFor(tb, ops!, 'devices/ret-6/#')).size, 1, 'kept');
    const cleared = await runCli(['revoke', 'ret-6', '--db', tb.db]);
    t.equal(cleared.code, 0, cleared.stderr);
    t.match(cleared.stdout, /the broker deletes the retained messages they published/);
    await applied(['ret-6'], 5);
    t.equal((await retainedFor(tb, ops!, 'devices/ret-6/#')).size, 0, 'cleared by the broker, told through the registry');
  });
});
