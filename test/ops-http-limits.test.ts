// The ops HTTP port cannot be exhausted (issue 19 #10: 19,800 idle sockets from
// one address were held): per-address and total connection caps, refused at
// accept and counted, and idle sockets closed after the idle timeout. Against a
// real broker; the second client address is 127.0.0.2 (a socket bound with localAddress).
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { startTestBroker } from './helpers/broker.js';

/** A TCP connection to the ops port from `from`; resolves once connected, or rejects after 5 s. */
function open(port: number, from: string, sockets: Socket[]): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: from });
    sockets.push(s);
    s.on('error', () => {});
    const timer = setTimeout(() => reject(new Error(`no connection from ${from} in 5 s`)), 5000);
    s.once('connect', () => { clearTimeout(timer); resolve(s); });
  });
}

/** A connection from `from` that the server must refuse: resolves with the ms until it is closed (reset, or connected then reset); rejects after `ms`. */
function refusedWithin(port: number, from: string, sockets: Socket[], ms: number): Promise<number> {
  const s = connect({ host: '127.0.0.1', port, localAddress: from });
  sockets.push(s);
  s.on('error', () => {});
  return closedWithin(s, ms);
}

/** How long until the server closes `s` (reset or FIN); rejects after `ms`. */
function closedWithin(s: Socket, ms: number): Promise<number> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    if (s.destroyed || s.readableEnded) { resolve(0); return; }
    const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    const done = () => { clearTimeout(timer); resolve(Date.now() - start); };
    s.once('close', done);
    s.once('end', done);
    s.resume();
  });
}

/** GET `path` from source address `from`, with a 5 s deadline. */
function get(port: number, path: string, from: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress: from, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} from ${from}: no answer in 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

const refusals = async (port: number, limit: string) => {
  const { body } = await get(port, '/metrics', '127.0.0.3');
  const m = new RegExp(`credbroker_limit_refusals_total\\{limit="ops_http_${limit}"\\} (\\d+)`).exec(body);
  return m ? Number(m[1]) : 0;
};

t.test('per-address and total caps: the excess is reset at once and counted; others still get in', async (t) => {
  const tb = await startTestBroker({ httpMaxConnectionsPerAddress: 5, httpMaxConnections: 8, httpIdleTimeoutMs: 60_000 });
  t.teardown(() => tb.close());
  const port = tb.broker.ports.http!;
  const sockets: Socket[] = [];
  t.teardown(() => { for (const s of sockets) s.destroy(); });

  const held = [];
  for (let i = 0; i < 5; i++) held.push(await open(port, '127.0.0.1', sockets));
  t.ok(await refusedWithin(port, '127.0.0.1', sockets, 2000) < 2000, 'the 6th socket from one address is closed at once');
  t.ok(held.every((s) => !s.destroyed), 'the 5 before it are kept');
  t.equal((await get(port, '/healthz', '127.0.0.2')).status, 200, 'another address still gets /healthz');

  // 5 from 127.0.0.1 + 3 from 127.0.0.2 = the total cap of 8: a ninth is refused whoever sends it.
  for (let i = 0; i < 3; i++) held.push(await open(port, '127.0.0.2', sockets));
  t.ok(await refusedWithin(port, '127.0.0.3', sockets, 2000) < 2000, 'beyond the total cap, a socket from a third address is closed at once');
  held.shift()!.destroy();
  // Its slot is free once the server saw it close: retried until then, with a deadline.
  let metrics = 0;
  for (const end = Date.now() + 5000; ; ) {
    try {
      metrics = await refusals(port, 'total');
      break;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  t.ok(metrics >= 1, 'total refusals counted');
  t.ok(await refusals(port, 'per_address') >= 1, 'per-address refusals counted');
});

t.test('idle sockets are closed after httpIdleTimeoutMs: before a request and between keep-alive requests', async (t) => {
  const tb = await startTestBroker({ httpIdleTimeoutMs: 300 });
  t.teardown(() => tb.close());
  const port = tb.broker.ports.http!;
  const sockets: Socket[] = [];
  t.teardown(() => { for (const s of sockets) s.destroy(); });

  const silent = await open(port, '127.0.0.1', sockets);
  const afterRequest = await open(port, '127.0.0.1', sockets);
  afterRequest.write('GET /healthz HTTP/1.1\r\nHost: ops\r\nConnection: keep-alive\r\n\r\n');
  const slow = await open(port, '127.0.0.1', sockets);
  slow.write('GET /healthz HTTP/1.1\r\n'); // a request that never ends: its headers never complete
  const drip = setInterval(() => { if (!slow.destroyed) slow.write('X-A: b\r\n'); }, 100);
  t.teardown(() => clearInterval(drip));
  const cases = [['a socket that never sent a byte', silent], ['a keep-alive socket after its answer', afterRequest], ['a request dripped a header at a time', slow]] as const;
  const closed = await Promise.all(cases.map(([, s]) => closedWithin(s, 5000)));
  // The timeout is 300 ms; the drip keeps the socket busy, so only the request deadline closes that one.
  cases.forEach(([what], i) => t.ok(closed[i]! >= 200 && closed[i]! < 5000, `${what} is closed (after ${closed[i]} ms)`));
  clearInterval(drip);
  t.equal((await get(port, '/healthz', '127.0.0.1')).status, 200, 'the port still answers');
});

t.test('the caps are settings with sane defaults, and nonsense is refused', async (t) => {
  const { loadConfig } = await import('../broker/config.js');
  const c = loadConfig({}, {});
  t.same([c.httpMaxConnections, c.httpMaxConnectionsPerAddress, c.httpIdleTimeoutMs], [1024, 64, 10_000]);
  t.equal(loadConfig({}, { CREDBROKER_HTTP_IDLE_TIMEOUT_MS: '2s' }).httpIdleTimeoutMs, 2000);
  t.throws(() => loadConfig({}, { CREDBROKER_HTTP_MAX_CONNECTIONS: '0' }), { code: 'ERR_CONFIG' });
  t.throws(() => loadConfig({}, { CREDBROKER_HTTP_MAX_CONNECTIONS_PER_ADDRESS: '1.5' }), { code: 'ERR_CONFIG' });
  t.throws(() => loadConfig({}, { CREDBROKER_HTTP_IDLE_TIMEOUT_MS: '10' }), { code: 'ERR_CONFIG', message: /at least 100 ms/ });
});
