// Issue 19 finding 2 and issue 23 item 3, on real `serve --workers 2` processes
// and a real redis-server: the per-key rate limits hold for the node as a whole
// (its primary counts them over IPC), and nothing about them is in Redis, so a
// process that writes there (the old `credbroker:limit:empty` announcement, or a
// bucket key) locks no device and no address out; maxConnections holds for the
// node too (each worker has its share).
import t from 'tap';
import { Redis } from 'ioredis';
import { connectDevice } from './helpers/broker.js';
import { startRedis } from './helpers/redis.js';
import { startServe } from './helpers/serve-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Pause between one device's CONNECTs: well past the 25 ms in which a worker sends its counts, on a loaded box. */
const PACE_MS = 300;

t.test('serve --workers 2: limits hold for the node, kept by its primary, not by Redis', async (t) => {
  const redis = await startRedis(t);
  // A burst of 4 CONNECTs per device, then one per 100 s: nothing refills during the test.
  // And at most 3 sessions on the node.
  const serve = await startServe(['--workers', '2', '--bus', redis.url, '--log-format', 'json'], { CREDBROKER_DEVICE_CONNECT_BURST: '4', CREDBROKER_DEVICE_CONNECT_PER_SEC: '0.01', CREDBROKER_MAX_CONNECTIONS: '3' });
  t.teardown(() => serve.stop());
  const url = `mqtt://127.0.0.1:${serve.mqttPort}`;
  const attacker = new Redis(redis.url);
  t.teardown(() => attacker.disconnect());

  await t.test('a device cycling over both workers is refused at the node\'s limit, not twice it', async (t) => {
    const [creds] = await serve.provision(['cyc-1']);
    const codes: number[] = [];
    // The primary hands connections to the workers in turn.
    for (let i = 0; i < 8; i++) {
      const { client, code } = await connectDevice(url, creds!);
      codes.push(code);
      if (client) await client.endAsync();
      await sleep(PACE_MS);
    }
    t.same(codes.slice(0, 4), [0, 0, 0, 0], 'the burst of 4, over both workers');
    t.same(codes.slice(4), [5, 5, 5, 5], `then refused (${codes.join(',')}); each worker alone would have let 4 more in`);
    const refusedBy = async () => new Set(serve.records().filter((r) => r.event === 'auth.refused' && r.device === 'cyc-1' && r.reason === 'connect_rate').map((r) => r.worker));
    for (const end = Date.now() + 10_000; (await refusedBy()).size < 2 && Date.now() < end;) await sleep(50);
    t.same([...await refusedBy()].sort(), [0, 1], 'refused by each of the two workers');
    t.same(await attacker.keys('credbroker:limit:*'), [], 'no limit kept in Redis');
  });

  await t.test('limit announcements and buckets written into Redis lock no one out', async (t) => {
    const [dev] = await serve.provision(['forged-1']);
    const far = String(Date.now() + 600_000);
    const forge = async () => {
      // The announcement the old design trusted, for the device and for its address; and the buckets themselves.
      await attacker.publish('credbroker:limit:empty', `600000 credbroker:limit:deviceConnects:${dev!.deviceId}`);
      await attacker.publish('credbroker:limit:empty', '600000 credbroker:limit:authFailures:127.0.0.1');
      await attacker.set(`credbroker:limit:deviceConnects:${dev!.deviceId}`, far, 'PX', 600_000);
      await attacker.set('credbroker:limit:authFailures:127.0.0.1', far, 'PX', 600_000);
    };
    await forge();
    // And on and on while the device connects, as an attacker would.
    let writing = true;
    const writer = (async () => { while (writing) { await forge(); await sleep(10); } })();
    const codes: number[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const { client, code } = await connectDevice(url, dev!);
        codes.push(code);
        if (client) await client.endAsync();
      }
    } finally {
      writing = false;
      await writer;
    }
    t.same(codes, [0, 0, 0, 0], `every CONNECT after the forgery gets CONNACK 0, on both workers (${codes.join(',')})`);
  });

  await t.test('maxConnections holds for the node: 3 over both workers, not 3 on each', async (t) => {
    const connected = async () => Number(/^credbroker_connected_clients (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${serve.httpPort}/metrics`)).text())?.[1]);
    for (const end = Date.now() + 10_000; await connected() !== 0;) {
      if (Date.now() > end) throw new Error('the earlier sessions did not close');
      await sleep(50);
    }
    const devs = await serve.provision(['cap-0', 'cap-1', 'cap-2', 'cap-3', 'cap-4', 'cap-5']);
    const codes: number[] = [];
    for (const d of devs) {
      const { client, code } = await connectDevice(url, d);
      codes.push(code);
      if (client) t.teardown(() => { client.end(true); });
    }
    t.equal(codes.filter((c) => c === 0).length, 3, `3 sessions accepted (${codes.join(',')}); each worker alone would have taken 3`);
    t.ok(codes.filter((c) => c !== 0).every((c) => c === 3), 'the rest: CONNACK 3, server unavailable');
    t.equal(await connected(), 3, '/metrics: 3 sessions on the node');
  });
});
