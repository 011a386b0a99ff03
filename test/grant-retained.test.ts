// A grant's retained publishes go with the grant (issue #19): `revoke --grant`
// and the grant's expiry clear them, as revoking a device clears its own. An
// observer's retained message under the same filter stays, and is the sentinel
// that shows a new subscriber got every retained message there is.
import t from 'tap';
import type { MqttClient } from 'mqtt';
import { connect, connectDevice, startTestBroker, type TestBroker } from './helpers/broker.js';
import { issueGrant, revokeGrant } from '../operations/index.js';

const FILTER = 'devices/pump-1/commands/#';
const SENTINEL = 'devices/pump-1/commands/mode';

/** Retained messages a new subscriber to FILTER gets: collected until the observer's retained sentinel and a live message after it have arrived. */
async function retainedNow(tb: TestBroker, observer: { deviceId: string; accessToken: string }, tag: string): Promise<Map<string, string>> {
  const { client } = await connectDevice(tb.url, observer);
  const got = new Map<string, string>();
  try {
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no sentinel within 10 s (${tag})`)), 10_000);
      client!.on('message', (topic, payload, packet) => {
        if (packet.retain) got.set(topic, payload.toString());
        else if (topic === 'devices/pump-1/commands/live' && payload.toString() === tag) { clearTimeout(timer); resolve(); }
      });
    });
    await client!.subscribeAsync(FILTER, { qos: 1 });
    await waitFor(() => got.has(SENTINEL), `retained sentinel (${tag})`);
    await client!.publishAsync('devices/pump-1/commands/live', tag, { qos: 1 });
    await done;
  } finally {
    await client!.endAsync();
  }
  return got;
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cleared = async (tb: TestBroker) => (await tb.broker.context.metrics.retainedCleared.get()).values[0]?.value ?? 0;

async function grantPublishesRetained(tb: TestBroker, name: string, ttlMs: number): Promise<MqttClient> {
  const { token } = await issueGrant(tb.issuer, { name, publish: ['devices/pump-1/commands/reboot'], subscribe: [], ttlMs, reason: 'test' });
  const g = await connect(tb.url, { clientId: `grant:${name}`, username: `grant:${name}`, password: token });
  if (!g.client) throw new Error(`grant CONNECT refused: ${g.code}`);
  g.client.on('error', () => {});
  await g.client.publishAsync('devices/pump-1/commands/reboot', `reboot from ${name}`, { qos: 1, retain: true });
  return g.client;
}

t.test('retained messages of a grant', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const [obs] = await tb.provision(['obs-ret'], 'observer');
  await tb.provision(['pump-1']);
  const ob = (await connectDevice(tb.url, obs!)).client!;
  await ob.publishAsync(SENTINEL, 'eco', { qos: 1, retain: true });
  await ob.endAsync();

  t.test('cleared by revoke --grant', async (t) => {
    const g = await grantPublishesRetained(tb, 'tech-rev', 3_600_000);
    t.teardown(() => g.end(true));
    t.equal((await retainedNow(tb, obs!, 'before-revoke')).get('devices/pump-1/commands/reboot'), 'reboot from tech-rev', 'kept while the grant lives');
    const before = await cleared(tb);
    t.ok((await revokeGrant(tb.issuer.reg, 'tech-rev')).changed);
    await waitFor(async () => (await cleared(tb)) > before, 'the broker to clear the grant\'s retained message');
    const got = await retainedNow(tb, obs!, 'after-revoke');
    t.equal(got.get(SENTINEL), 'eco', 'the observer\'s retained message stays');
    t.notOk(got.has('devices/pump-1/commands/reboot'), 'the revoked grant\'s retained message is gone');
  });

  t.test('cleared when the grant expires, connected or not', async (t) => {
    const before = await cleared(tb);
    const g = await grantPublishesRetained(tb, 'tech-exp', 2500);
    await g.endAsync();
    t.equal((await retainedNow(tb, obs!, 'before-expiry')).get('devices/pump-1/commands/reboot'), 'reboot from tech-exp', 'kept while the grant lives');
    await waitFor(async () => (await cleared(tb)) > before, 'the broker to clear the expired grant\'s retained message');
    const got = await retainedNow(tb, obs!, 'after-expiry');
    t.equal(got.get(SENTINEL), 'eco', 'the observer\'s retained message stays');
    t.notOk(got.has('devices/pump-1/commands/reboot'), 'the expired grant\'s retained message is gone');
  });
});
