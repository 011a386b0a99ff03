// broker/connect-slices.ts: CONNECT work spread over event-loop turns so that a
// storm of CONNECTs cannot keep the listeners from accepting. On a controlled
// clock (which turn runs what, in which order), then in front of a real aedes
// with a deliberately slow hook (every CONNECT still answered, in order, and the
// listener accepting between slices), then on the real broker.
import t from 'tap';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { CONNECT_SLICE_MS, ConnectSlices } from '../broker/connect-slices.js';
import { listen, mqttTcpServer } from '../broker/listeners.js';
import { connect, startTestBroker } from './helpers/broker.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

t.test('past the slice, work waits for a later turn, in arrival order', async (t) => {
  let clock = 0;
  let deferred = 0;
  const slices = new ConnectSlices(10, () => deferred++, () => clock);
  const ran: number[] = [];
  slices.run(() => ran.push(1));
  clock = 10; // still inside the slice (its end included)
  slices.run(() => ran.push(2));
  clock = 11;
  for (const n of [3, 4, 5]) slices.run(() => ran.push(n));
  t.same(ran, [1, 2], 'the first two ran at once; the rest waits');
  t.equal(deferred, 3);
  await turn();
  t.same(ran, [1, 2, 3, 4, 5], 'a fresh slice on the next turn runs the waiting ones in order');
  // A turn that uses up its slice defers again, still in order, behind nothing newer.
  const slow = new ConnectSlices(10, () => deferred++, () => clock);
  const order: string[] = [];
  for (const n of ['a', 'b', 'c']) slow.run(() => { order.push(n); clock += 15; });
  t.same(order, ['a'], 'the first CONNECT of a turn always runs, whatever it costs');
  await turn();
  t.same(order, ['a', 'b'], 'one per turn while each takes longer than the slice');
  slow.run(() => order.push('d'));
  await turn();
  await turn();
  t.same(order, ['a', 'b', 'c', 'd'], 'a newer CONNECT never overtakes a waiting one');
});

t.test('a CONNECT whose client left while it waited is answered unverified', async (t) => {
  let clock = 0;
  const slices = new ConnectSlices(1, undefined, () => clock);
  let verified = 0;
  const hook = slices.wrap((_c, _u, _p, done) => { verified++; done(null, true); });
  const answers: (boolean | null)[] = [];
  hook({ closed: false } as Client, 'a', undefined, (_e, ok) => answers.push(ok));
  clock = 5;
  const gone = { closed: false };
  hook(gone as Client, 'b', undefined, (_e, ok) => answers.push(ok));
  gone.closed = true;
  await turn();
  t.equal(verified, 1, 'no check spent on the closed client');
  t.same(answers, [true, false]);
});

/**
 * Opens `n` sockets, then, once all are accepted, writes every CONNECT in one go
 * (so that one poll phase reads them all); resolves with the CONNACK return codes in socket order.
 */
async function burst(port: number, n: number): Promise<number[]> {
  const socks = await Promise.all(Array.from({ length: n }, () => new Promise<Socket>((resolve, reject) => {
    const sock = netConnect({ port, host: '127.0.0.1' }, () => resolve(sock));
    sock.on('error', reject);
  })));
  const codes = socks.map((sock) => new Promise<number>((resolve) => {
    sock.once('data', (d: Buffer) => { resolve(d[0] === 0x20 ? d[3]! : -2); sock.destroy(); });
    sock.once('close', () => resolve(-1));
  }));
  socks.forEach((sock, i) => sock.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: `c${i}` })));
  return Promise.all(codes);
}

t.test('in front of aedes: a burst of slow CONNECTs, each answered, checked in arrival order', async (t) => {
  let deferred = 0;
  const slices = new ConnectSlices(5, () => deferred++);
  const authOrder: string[] = [];
  const spin = (ms: number) => { const end = performance.now() + ms; while (performance.now() < end); };
  const hook: NonNullable<AedesOptions['authenticate']> = (client, _u, _p, done) => { authOrder.push(client.id); spin(2); done(null, true); };
  const aedes = await Aedes.createBroker({ authenticate: slices.wrap(hook) });
  const server = mqttTcpServer(aedes);
  const port = await listen(server, 0, '127.0.0.1', 511, 'MQTT', '--mqtt-port');
  t.teardown(async () => {
    await new Promise<void>((r) => aedes.close(() => r()));
    await new Promise<void>((r) => server.close(() => r()));
  });
  const codes = await burst(port, 60);
  t.same(codes, Array(60).fill(0), 'every CONNECT accepted');
  t.same(authOrder, Array.from({ length: 60 }, (_, i) => `c${i}`), 'checked in the order they were read');
  // How many waited depends on how many one poll phase read (the host's scheduling): the controlled clock above tests that part.
  t.comment(`${deferred} CONNECTs waited for a later turn`);
});

t.test('the broker: a burst of devices at once all connect; the deferral count is a metric', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const ids = Array.from({ length: 40 }, (_, i) => `slice-${i}`);
  const devs = await tb.provision(ids);
  const results = await Promise.all(devs.map((d) => connect(tb.url, { clientId: d.deviceId, username: d.deviceId, password: d.accessToken, reconnectPeriod: 0, connectTimeout: 60_000 })));
  t.same(results.map((r) => r.code), Array(40).fill(0), 'all 40 connected');
  await Promise.all(results.map((r) => r.client?.endAsync()));
  const metrics = await (await fetch(`http://127.0.0.1:${tb.broker.ports.http}/metrics`)).text();
  t.match(metrics, /credbroker_connects_deferred_total \d+/);
  t.ok(CONNECT_SLICE_MS > 0);
});
