// The operator API on a node of workers (`serve --workers 2 --bus redis://…`): the
// primary serves the ops port and the API with it; sessions come from every
// worker, and an API revoke closes a live session on whichever worker holds it
// within a second (the registry's change feed reaches every worker).
import t from 'tap';
import { addOperator, issueOperatorToken } from '../operations/operators.js';
import { closed, connectDevice } from './helpers/broker.js';
import { startRedis } from './helpers/redis.js';
import { startServe } from './helpers/serve-process.js';
import { until } from './helpers/wait.js';

t.test('a node of two workers serves the API on its ops port', async (t) => {
  const redis = await startRedis(t);
  const serve = await startServe(['--workers', '2', '--bus', redis.url, '--log-format', 'json']);
  t.teardown(() => serve.stop());
  const url = `mqtt://127.0.0.1:${serve.mqttPort}`;
  await addOperator(serve.issuer.reg, 'nina', 'operator');
  const { token } = await issueOperatorToken(serve.issuer.reg, 'nina');
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`http://127.0.0.1:${serve.httpPort}/api/v1${path}`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() as any };
  };

  const devs = await serve.provision(['node-a', 'node-b']);
  // The primary hands connections to the workers in turn: the two sit on different workers.
  const clients = await Promise.all(devs.map((d) => connectDevice(url, d)));
  t.teardown(() => { for (const c of clients) c.client?.end(true); });
  t.same(clients.map((c) => c.code), [0, 0]);

  const sessions = await api('GET', '/sessions');
  t.equal(sessions.status, 200);
  t.same(sessions.body.sessions.map((s: { deviceId: string }) => s.deviceId), ['node-a', 'node-b'], 'sessions of both workers');
  const list = await api('GET', '/devices');
  t.same(list.body.devices.map((d: { connected: boolean }) => d.connected), [true, true], 'connected, whichever worker holds it');
  await until('the node\'s stats to count both sessions', async () => (await api('GET', '/stats')).body.sessions === 2, 15_000);

  for (const [i, id] of ['node-a', 'node-b'].entries()) {
    const gone = closed(clients[i]!.client!, 10_000);
    const t0 = Date.now();
    const r = await api('POST', `/devices/${id}/revoke`, { reason: 'lost' });
    t.same(r.body, { deviceId: id, revoked: true, tokensRevoked: 1 });
    const at = await gone;
    t.ok(at - t0 < 1000, `${id}: closed within a second of the API revoke (${at - t0} ms)`);
  }
  t.equal((await serve.issuer.reg.audit.query({ action: 'device.revoke' }))[0]!.actor, 'operator:nina');

  const grant = await api('POST', '/grants', { name: 'viewer-app', subscribe: ['devices/node-a/telemetry'], ttl: '10m' });
  t.equal(grant.status, 201);
  const g = await connectDevice(url, { deviceId: 'grant:viewer-app', accessToken: grant.body.token } as never);
  t.equal(g.code, 0, 'a grant issued on the primary connects to a worker');
  g.client?.end(true);
});
