import t from 'tap';
import mqtt, { type MqttClient } from 'mqtt';
import { issueAccessToken, setProfile } from '../operations/index.js';
import type { DeviceId } from '../registry/index.js';
import { connectDevice, startTestBroker, subscribeGranted } from './helpers/broker.js';
import { renewalSession } from './helpers/renewal-session.js';
import { until } from './helpers/wait.js';

// Issue 10 #6: a narrowed profile reaches sessions that were subscribed under the old,
// wider ACL — after an in-band renewal, and when a persistent session is resumed.
const WIDE = { name: 'watcher', publish: ['watchers/{device}/status'], subscribe: ['devices/#'] };
const NARROW = { ...WIDE, subscribe: ['devices/{device}/commands/#'] };

/** Every topic a client receives, in order (token answers left out). */
function inbox(client: MqttClient): string[] {
  const got: string[] = [];
  client.on('message', (topic) => { if (!topic.startsWith('$devices/')) got.push(topic); });
  return got;
}

t.test('narrowing an ACL reaches existing subscriptions', async (t) => {
  const tb = await startTestBroker({ authFailBurst: 1000, authFailPerSec: 100 });
  t.teardown(() => tb.close());
  const clients: MqttClient[] = [];
  t.teardown(() => { for (const c of clients) c.end(true); });
  await setProfile(tb.issuer.reg, WIDE);
  const [ops] = await tb.provision(['nar-ops'], 'observer');
  const sender = (await connectDevice(tb.url, ops!)).client!;
  clients.push(sender);
  const send = async (topic: string, retain = false) => { await sender.publishAsync(topic, 'x', { qos: 1, retain }); };

  t.test('an in-band renewal under the narrowed profile stops deliveries outside it', async (t) => {
    const [w] = await tb.provision(['nar-1'], 'watcher');
    const s = await renewalSession(tb.url, 'nar-1', w!.accessToken);
    clients.push(s.client!);
    const got = inbox(s.client!);
    t.equal(await subscribeGranted(s.client!, 'devices/#'), 1, 'the wide profile grants devices/#');
    await send('devices/other/commands/a');
    await until('the command before narrowing', () => got.length > 0, 10_000);
    t.same(got, ['devices/other/commands/a'], 'before narrowing: another device\'s command arrives');

    await setProfile(tb.issuer.reg, NARROW);
    t.equal((await s.request!()).kind, 'accepted', 'renewed in-band under the narrowed profile');
    got.length = 0;
    await send('devices/other/commands/b');
    await send('devices/other/commands/retained', true);
    await send('devices/nar-1/commands/c'); // the sentinel: sent last, by the same sender, so the others came first or never
    await until('its own command, sent after the others', () => got.includes('devices/nar-1/commands/c'), 10_000);
    t.same(got, ['devices/nar-1/commands/c'], 'after renewal: only its own commands, through the same old subscription');
    t.equal(await subscribeGranted(s.client!, 'devices/#'), 128, 'a new wide SUBSCRIBE is refused');
    await setProfile(tb.issuer.reg, WIDE);
  });

  t.test('a persistent session resumed under a narrower token gets neither restored subscriptions nor its queue outside the ACL', async (t) => {
    const [w] = await tb.provision(['nar-2'], 'watcher');
    const persistent = { clean: false } as const;
    const first = (await connectDevice(tb.url, w!, persistent)).client!;
    t.equal(await subscribeGranted(first, 'devices/#'), 1);
    await new Promise<void>((r) => first.end(false, {}, () => r()));
    await send('devices/other/commands/queued');     // queued for the offline session (QoS 1)
    await send('devices/nar-2/commands/queued-own');

    await setProfile(tb.issuer.reg, NARROW);
    const narrow = await issueAccessToken(tb.issuer, 'nar-2' as DeviceId);
    // The queue is flushed right after CONNACK: listen before connecting.
    const c = mqtt.connect(tb.url, { clientId: 'nar-2', username: 'nar-2', password: narrow.token, clean: false, reconnectPeriod: 0, protocolVersion: 4 });
    clients.push(c);
    const got = inbox(c);
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
    t.ok(connack.sessionPresent, 'the session was resumed');
    // The queue is delivered in order: its own command, queued last, is the sentinel for the other device's.
    await until('its own queued command', () => got.includes('devices/nar-2/commands/queued-own'), 10_000);
    t.pass('its own queued command is delivered');
    t.equal(await subscribeGranted(c, 'devices/nar-2/commands/#'), 1, 'it subscribes within its new ACL');
    await send('devices/other/commands/live');
    await send('devices/nar-2/commands/live-own'); // the sentinel for the live one
    await until('its own live command, sent after the other device\'s', () => got.includes('devices/nar-2/commands/live-own'), 10_000);
    t.notOk(got.some((topic) => topic.startsWith('devices/other/')), `nothing of another device arrives, queued or live (got ${JSON.stringify(got)})`);
    await setProfile(tb.issuer.reg, WIDE);
  });
});
