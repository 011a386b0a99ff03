// The bench's CPU per CONNECT is per accepted CONNECT (issue #20 item 5): refused
// ones cost the broker less and would flatter the figure; a run in which none
// was accepted is an error, not a figure. A real broker, real CONNECTs over TCP.
import t from 'tap';
import { measureConnects } from '../bench/connect-rate.js';
import type { BrokerHandle, BrokerStats } from '../bench/lib/broker-proc.js';
import { connectPacket } from '../bench/lib/raw-client.js';
import { startTestBroker } from './helpers/broker.js';

t.test('measureConnects divides the broker\'s CPU by the accepted CONNECTs', async (t) => {
  const tb = await startTestBroker({ authFailBurst: 1000, authFailPerSec: 1000 });
  t.teardown(() => tb.close());
  const devices = await tb.provision(Array.from({ length: 7 }, (_, i) => `bench-${i}`));
  const good = devices.map((d) => connectPacket({ clientId: d.deviceId, username: d.deviceId, password: d.accessToken }));
  const bad = devices.slice(0, 4).map((d) => connectPacket({ clientId: d.deviceId, username: d.deviceId, password: 'not-a-token' }));
  // The broker runs in this process: its CPU is this process's. Every reading is kept to check the division.
  const readings: number[] = [];
  const handle: BrokerHandle = {
    kind: 'credbroker', port: tb.broker.ports.mqtt!, pid: process.pid,
    async stats(): Promise<BrokerStats> {
      const { user, system } = process.cpuUsage();
      readings.push(user + system);
      return { cpuUs: user + system, rss: process.memoryUsage().rss, heapUsed: null, clients: null };
    },
    async gc() {},
    close: () => tb.close(),
  };

  const run = await measureConnects(handle, [...good.slice(1, 6), ...bad], good.slice(0, 1), 4);
  t.same([run.ok, run.refused, run.errors], [5, 4, 0], '5 accepted, 4 refused');
  // The readings: after the warm-up, before the measured CONNECTs, after them, at the end.
  t.equal(readings.length, 4, 'four readings of the broker\'s CPU');
  t.equal(run.cpuPerConnectUs, (readings[3]! - readings[1]!) / 5, 'CPU per CONNECT = CPU / accepted CONNECTs');

  await t.rejects(measureConnects(handle, bad, good.slice(6), 4), /no CONNECT accepted of 4 \(4 refused, 0 errors\)/, 'none accepted: an error, not a figure');
});
