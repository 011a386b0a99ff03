// What an attacker on the network reaches besides MQTT (issue 10, item 14): the
// unauthenticated ops HTTP port binds to loopback unless told otherwise, and the
// WebSocket listener refuses a handshake without the `mqtt` subprotocol, or from a
// browser origin outside the allow-list when one is set.
import t from 'tap';
import WebSocket from 'ws';
import { validateConfig } from '../broker/index.js';
import { connect, connectDevice, startTestBroker } from './helpers/broker.js';
import { connectFrom, scrape } from './helpers/hostile-util.js';

/** Opens a raw WebSocket and reports the HTTP status of a refusal, or 101 when the upgrade went through. */
function handshake(port: number, protocols: string[], origin?: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, protocols, origin ? { origin } : {});
    ws.once('open', () => { ws.terminate(); resolve(101); });
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.once('error', () => resolve(-1));
  });
}

/** Whether a TCP connection to host:port is accepted (an HTTP GET answers). */
async function httpReachable(host: string, port: number): Promise<boolean> {
  try {
    return (await fetch(`http://${host}:${port}/healthz`)).status === 200;
  } catch {
    return false;
  }
}

t.test('ops HTTP binds to 127.0.0.1 by default, even when MQTT listens on every address', async (t) => {
  t.equal(validateConfig({}).httpHost, '127.0.0.1', 'default httpHost');
  // 127.0.0.2 reaches a 0.0.0.0 listener but not one bound to 127.0.0.1: it stands in for "the network".
  const tb = await startTestBroker({ host: '0.0.0.0' });
  t.teardown(() => tb.close());
  const [dev] = await tb.provision(['ops-exposure-1']);
  const mqttFromOutside = await connectFrom(tb.broker.ports.mqtt!, '127.0.0.2', { clientId: dev!.deviceId, username: dev!.deviceId, password: dev!.accessToken });
  t.equal(mqttFromOutside.code, 0, 'MQTT answers on 127.0.0.2 (host 0.0.0.0)');
  mqttFromOutside.client?.end(true);
  t.ok(await httpReachable('127.0.0.1', tb.broker.ports.http!), 'ops HTTP answers on 127.0.0.1');
  t.notOk(await httpReachable('127.0.0.2', tb.broker.ports.http!), 'ops HTTP does not answer on 127.0.0.2');

  // Off loopback it is served only over TLS (api-exposure.test.ts covers that); on 127.0.0.3 it stays loopback.
  const open = await startTestBroker({ host: '127.0.0.1', httpHost: '127.0.0.3' });
  t.teardown(() => open.close());
  t.ok(await httpReachable('127.0.0.3', open.broker.ports.http!), '--http-host names the address it answers on');
});

t.test('WebSocket: the mqtt subprotocol is required', async (t) => {
  const tb = await startTestBroker({ wsPort: 0 });
  t.teardown(() => tb.close());
  const port = tb.broker.ports.ws!;
  t.equal(await handshake(port, []), 400, 'no subprotocol: 400');
  t.equal(await handshake(port, ['chat', 'superchat']), 400, 'other subprotocols only: 400');
  t.equal(await handshake(port, ['mqtt']), 101, 'mqtt: upgraded');
  t.equal(await handshake(port, ['mqttv3.1']), 101, 'mqttv3.1: upgraded');
  t.equal(await handshake(port, ['chat', 'mqtt']), 101, 'mqtt among others: upgraded');
  t.equal(await scrape(tb.broker.ports.http!, 'credbroker_ws_handshake_refusals_total', { reason: 'no_subprotocol' }), 2, 'refusals counted');

  const [dev] = await tb.provision(['ws-proto-1']);
  const ok = await connectDevice(`ws://127.0.0.1:${port}`, dev!);
  t.equal(ok.code, 0, 'MQTT.js over ws:// (offers mqtt) connects');
  ok.client?.end(true);
});

t.test('WebSocket: Origin allow-list', async (t) => {
  const tb = await startTestBroker({ wsPort: 0, wsOrigins: ['https://app.example.com', 'http://localhost:8080'] });
  t.teardown(() => tb.close());
  const port = tb.broker.ports.ws!;
  t.equal(await handshake(port, ['mqtt'], 'https://evil.example'), 403, 'origin outside the list: 403');
  t.equal(await handshake(port, ['mqtt'], 'https://app.example.com.evil.example'), 403, 'look-alike origin: 403');
  t.equal(await handshake(port, ['mqtt'], 'http://app.example.com'), 403, 'other scheme: 403');
  t.equal(await handshake(port, ['mqtt'], 'https://app.example.com'), 101, 'listed origin: upgraded');
  t.equal(await handshake(port, ['mqtt'], 'HTTP://LOCALHOST:8080'), 101, 'origins compare case-insensitively');
  t.equal(await handshake(port, ['mqtt']), 101, 'no Origin (not a browser): upgraded');
  t.equal(await scrape(tb.broker.ports.http!, 'credbroker_ws_handshake_refusals_total', { reason: 'origin' }), 3, 'refusals counted');

  const [dev] = await tb.provision(['ws-origin-1']);
  const url = `ws://127.0.0.1:${port}`;
  const good = await connectDevice(url, dev!, { wsOptions: { origin: 'https://app.example.com' } });
  t.equal(good.code, 0, 'MQTT.js from the listed origin connects');
  good.client?.end(true);
  const bad = await connect(url, { clientId: dev!.deviceId, username: dev!.deviceId, password: dev!.accessToken, wsOptions: { origin: 'https://evil.example' } });
  t.not(bad.code, 0, 'MQTT.js from another origin does not');
});

t.test('settings: httpHost and wsOrigins are validated', async (t) => {
  t.same(validateConfig({ wsOrigins: ['https://a.example', 'http://b.example:8080'] }).wsOrigins, ['https://a.example', 'http://b.example:8080'], 'a list (config file)');
  t.same(validateConfig({ wsOrigins: 'https://a.example,https://b.example' }).wsOrigins, ['https://a.example', 'https://b.example'], 'comma-separated (flag, environment)');
  t.same(validateConfig({}).wsOrigins, [], 'default: empty (any origin)');
  for (const bad of ['https://a.example/', 'https://a.example/path', 'a.example', '*', ['https://a.example', 7], 42]) {
    t.throws(() => validateConfig({ wsOrigins: bad }), { code: 'ERR_CONFIG', message: /invalid wsOrigins .*(not an origin|expected a list)/ }, `refused: ${JSON.stringify(bad)}`);
  }
  t.throws(() => validateConfig({ httpHost: '' }), { code: 'ERR_CONFIG', message: /invalid httpHost/ }, 'empty httpHost');
});
