// `credbroker sim --url A,B` (issue 13): the fleet spread over several brokers.
import t from 'tap';
import { runSimulation } from '../device-sim/index.js';
import { brokerUrls, resolveSimOptions } from '../device-sim/options.js';
import { startCluster } from './helpers/cluster.js';

t.setTimeout(600_000);

t.test('--url takes a comma-separated list; each entry is checked', async (t) => {
  const o = resolveSimOptions({ url: 'mqtt://127.0.0.1:1883, mqtt://127.0.0.1:1884', db: 'x.db' });
  t.same(brokerUrls(o.url), ['mqtt://127.0.0.1:1883', 'mqtt://127.0.0.1:1884']);
  t.same(brokerUrls('mqtt://127.0.0.1:1883'), ['mqtt://127.0.0.1:1883'], 'one URL is a list of one');
  t.throws(() => resolveSimOptions({ url: 'mqtt://127.0.0.1:1883,127.0.0.1:1884', db: 'x.db' }), { message: 'invalid --url "127.0.0.1:1884": expected mqtt://HOST:PORT (or mqtts://, ws://, wss://), several separated by commas' });
  t.throws(() => resolveSimOptions({ url: 'mqtt://127.0.0.1:1883,', db: 'x.db' }), { message: /invalid --url ""/ }, 'an empty entry');
});

// The simulator's invariants (renewal, ACL, revocation, offline recovery, expiry)
// against two workers of one node, and against two nodes with the fleet spread
// over both (--url A,B). Short: leeway 1 s, 5 s tokens, 12 s.
for (const topology of ['workers', 'nodes'] as const) {
  t.test(`sim against ${topology === 'workers' ? 'serve --workers 2' : 'two nodes on one bus (--url A,B)'}: every invariant holds`, async (t) => {
    const c = await startCluster(t, topology, { env: { CREDBROKER_LEEWAY_SEC: '1' } });
    const url = topology === 'workers' ? c.url() : `${c.url(0)},${c.url(1)}`;
    const report = await runSimulation({
      url, db: c.db, opsUrl: `http://127.0.0.1:${c.nodes[0]!.httpPort}`, devices: 50, durationMs: 12_000, tokenTtlMs: 5_000, publishIntervalMs: 1_000,
      offlineFraction: 0.1, revokeFraction: 0.06, probeFraction: 0.06, nonRenewingFraction: 0.04, leewayMs: 1_000, seed: 7, progress: false,
    });
    for (const i of report.invariants) t.equal(i.verdict, 'pass', `${i.name}: ${i.detail}${i.examples.length ? ` — ${i.examples.join('; ')}` : ''}`);
    t.ok(report.ok, 'report.ok');
    if (topology === 'nodes') {
      const spread = c.nodes.map((n) => new Set(n.records().filter((r) => r.event === 'session.open').map((r) => r.device)).size);
      t.ok(spread.every((k) => k >= 20), `the fleet was spread over both nodes (${spread.join(' and ')} devices)`);
    }
  });
}
