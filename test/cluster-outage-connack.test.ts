import t from 'tap';
import { connect } from './helpers/broker.js';
import { creds, readyz, startCluster, until } from './helpers/cluster.js';

// A persistent-session CONNECT while the bus' Redis is down: CONNACK 3 (server unavailable,
// try again later), not a socket closed without an answer. A clean session still gets in.

t.test('clean=0 CONNECT during a Redis outage gets CONNACK 3', async (t) => {
  const c = await startCluster(t, 'workers');
  const [node] = c.nodes;
  const [persistent, clean] = await c.provision(['keep-1', 'clean-1']);
  const before = await connect(c.url(), { ...creds(persistent!), clean: false });
  t.equal(before.code, 0, 'a persistent session connects while Redis is up');
  before.client?.end(true);

  await c.redis.stop();
  await until('/readyz to report the outage', async () => (await readyz(node!)) === 503, 30_000);
  const during = await connect(c.url(), { ...creds(persistent!), clean: false });
  t.equal(during.code, 3, 'CONNACK 3: server unavailable, try again later');
  const sentinel = await connect(c.url(), creds(clean!));
  t.equal(sentinel.code, 0, 'a clean session still gets in during the outage');
  sentinel.client?.end(true);

  await c.redis.restart();
  await until('/readyz ready again', async () => (await readyz(node!)) === 200, 60_000);
  const after = await connect(c.url(), { ...creds(persistent!), clean: false });
  t.equal(after.code, 0, 'and the persistent session connects again once Redis is back');
  after.client?.end(true);
});
