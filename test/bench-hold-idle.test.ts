// The bench's idle-connection hold (bench/memory.ts holdIdle), shared by the memory
// section and the cluster section's RSS per connection at each worker count (#23):
// every connection is accepted and subscribed, the two readings bracket them, and
// all of them are closed when it returns. A real broker, real CONNECTs over TCP.
import t from 'tap';
import type { BrokerHandle, BrokerStats } from '../bench/lib/broker-proc.js';
import { connectPacket } from '../bench/lib/raw-client.js';
import { holdIdle } from '../bench/memory.js';
import { startTestBroker } from './helpers/broker.js';
import { until } from './helpers/wait.js';

t.test('holdIdle holds one subscribed connection per packet between its two readings, then closes them', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const devices = await tb.provision(Array.from({ length: 8 }, (_, i) => `idle-${i}`));
  const packets = devices.map((d) => connectPacket({ clientId: d.deviceId, username: d.deviceId, password: d.accessToken }));
  const connected = () => tb.broker.context.aedes?.connectedClients ?? -1;
  const events: string[] = [];
  const handle: BrokerHandle = {
    kind: 'credbroker', port: tb.broker.ports.mqtt!, pid: process.pid,
    async stats(): Promise<BrokerStats> {
      events.push(`stats ${connected()}`);
      return { cpuUs: 0, rss: process.memoryUsage().rss, heapUsed: null, clients: connected() };
    },
    async gc() {},
    close: () => tb.close(),
  };
  const h = await holdIdle(handle, packets.slice(0, 2), packets.slice(2), devices.slice(2).map((d) => `devices/${d.deviceId}/commands/#`), {
    atBefore: async () => { events.push('before'); },
    atAfter: async (ok) => { events.push(`after ${ok}`); },
  });
  t.same([h.ok, h.subscribed], [6, 6], 'six connections accepted, each subscribed');
  t.match(events[0], /^stats \d+$/, 'first reading');
  t.same(events.slice(1), ['before', 'stats 6', 'after 6'], 'the second reading sees the six held connections, between the two hooks');
  await until('the held connections to close', () => connected() === 0, 10_000);
  t.pass('all closed');
});
