// Local delivery stays local (issue 23): a message between two clients of the same broker on a Redis bus
// reaches its subscriber without Redis, and exactly once; the bus still carries it to the other node.
// Redis is held with CLIENT PAUSE WRITE (PUBLISH waits): a delivery that went by way of Redis could not arrive.
import { Redis } from 'ioredis';
import t from 'tap';
import { collect, startCluster, until } from './helpers/cluster.js';

t.setTimeout(300_000);

const creds = (d: { deviceId: string; accessToken: string }) => ({ clientId: d.deviceId, username: d.deviceId, password: d.accessToken });

t.test('a publish to a subscriber of the same broker is delivered while Redis holds every PUBLISH, once, and still reaches the other node', async (t) => {
  const c = await startCluster(t, 'nodes');
  const [local, remote] = await c.provision(['local-obs', 'remote-obs'], 'observer');
  const [sen] = await c.provision(['local-sen']);
  const o = await c.connectOn(creds(local!), 0);
  const r = await c.connectOn(creds(remote!), 1);
  const s = await c.connectOn(creds(sen!), 0);
  t.teardown(() => { for (const x of [o, r, s]) x.client?.end(true); });
  t.equal(s.place, o.place, `publisher and subscriber on one broker (${o.place})`);
  t.not(r.place, o.place, `the remote subscriber on ${r.place}`);
  await o.client!.subscribeAsync('devices/+/telemetry', { qos: 0 });
  await r.client!.subscribeAsync('devices/+/telemetry', { qos: 0 });
  const gotLocal = collect(o.client!);
  const gotRemote = collect(r.client!);
  const topic = `devices/${sen!.deviceId}/telemetry`;

  const admin = new Redis(c.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
  t.teardown(() => admin.disconnect());
  await admin.call('CLIENT', 'PAUSE', '120000', 'WRITE');
  try {
    await s.client!.publishAsync(topic, 'while-paused', { qos: 0 });
    await until('the local subscriber to get the message while Redis holds PUBLISH', () => gotLocal.length >= 1, 30_000);
  } finally {
    await admin.call('CLIENT', 'UNPAUSE');
  }
  // The sentinel: a second message after Redis is back. Once both subscribers have it, the bus' copy of the
  // first (had it come back to its own broker) would have been delivered before it.
  await s.client!.publishAsync(topic, 'sentinel', { qos: 0 });
  await until('the sentinel on both nodes', () => gotLocal.includes(`${topic} sentinel`) && gotRemote.includes(`${topic} sentinel`), 30_000);
  t.same(gotLocal, [`${topic} while-paused`, `${topic} sentinel`], 'the local subscriber got each message once, in order');
  t.same(gotRemote, [`${topic} while-paused`, `${topic} sentinel`], 'the other node got both through the bus');
});
