// The operator console's files on the ops port (broker/console-assets.ts): /console/
// serves the built page, its one script and one style sheet with the right types and a
// strict Content-Security-Policy, no inline script or style, nothing else reachable under
// it (no directory traversal), on a broker's ops port and on a cluster node's.
import t, { type Test } from 'tap';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { CONSOLE_CSP, consoleMount } from '../broker/console-assets.js';
import { checkBusSecurity } from '../cluster/bus-policy.js';
import { WorkerAsker } from '../cluster/ipc.js';
import { createNodeOpsServer } from '../cluster/node-ops.js';
import { openRegistry } from '../registry/index.js';
import { freshRegistryTarget } from './helpers/backend.js';
import { startTestBroker } from './helpers/broker.js';
import { buildConsole } from './helpers/console.js';

interface Got { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/** One request with the path sent exactly as written (fetch would resolve `..` before sending). */
function get(port: number, path: string, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${path} in 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

buildConsole();

async function servesTheConsole(t: Test, port: number): Promise<void> {
  const page = await get(port, '/console/');
  t.equal(page.status, 200);
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  t.equal(page.headers['content-security-policy'], CONSOLE_CSP);
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  t.equal(page.headers['referrer-policy'], 'no-referrer');
  t.match(page.body, /<script type="module" src="app\.js"><\/script>/);
  t.match(page.body, /<link rel="stylesheet" href="app\.css">/);
  // No inline script or style: every <script> names a src, no <style>, no style= or on…= attribute.
  t.notMatch(page.body, /<script(?![^>]*\bsrc=)[^>]*>/);
  t.notMatch(page.body, /<style|\sstyle=|\son[a-z]+=/i);
  t.notMatch(page.body, /https?:\/\//, 'the page names no other origin');

  const js = await get(port, '/console/app.js');
  t.equal(js.status, 200);
  t.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
  t.equal(js.headers['content-security-policy'], CONSOLE_CSP);
  t.ok(js.body.length > 1000, 'the bundle is served');
  const css = await get(port, '/console/app.css');
  t.equal(css.status, 200);
  t.equal(css.headers['content-type'], 'text/css; charset=utf-8');

  const bare = await get(port, '/console');
  t.equal(bare.status, 308);
  t.equal(bare.headers.location, '/console/');

  const head = await get(port, '/console/app.js', 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], String(Buffer.byteLength(js.body)));
  t.equal(head.body, '');
  t.equal((await get(port, '/console/', 'POST')).status, 405);

  // Nothing but the three files: not the source, not a map, not a file beside or above.
  for (const path of ['/console/main.tsx', '/console/app.js.map', '/console/../package.json', '/console/%2e%2e/package.json',
    '/console/..%2fpackage.json', '/console/..%5c..%5cpackage.json', '/console//etc/passwd', '/console/app.js%00.css', '/console/app.js/']) {
    const r = await get(port, path);
    t.not(r.status, 200, `${path} is refused`);
    t.notMatch(r.body, /"name": "credbroker"|root:/, `${path} reveals no file`);
  }
}

t.test('a broker\'s ops port serves the console (mounted as serve mounts it)', async (t) => {
  const b = await startTestBroker({}, { opsMounts: [consoleMount()] });
  t.teardown(() => b.close());
  await servesTheConsole(t, b.broker.ports.http!);
  // The ops port's own routes are untouched.
  t.equal((await get(b.broker.ports.http!, '/healthz')).status, 200);
});

t.test('a cluster node\'s ops port serves the console from its primary', async (t) => {
  const reg = await openRegistry(await freshRegistryTarget(t), { init: { issuer: 'urn:console-test' } });
  t.teardown(() => reg.close());
  const { server, api } = createNodeOpsServer({
    workers: () => [], expected: 0, asker: new WorkerAsker(), own: new Registry(),
    bus: checkBusSecurity('redis://127.0.0.1:6379', false),
    limits: { maxConnections: 64, maxConnectionsPerAddress: 64, idleTimeoutMs: 10_000 },
    reg, host: '127.0.0.1', tls: null, mounts: [consoleMount()],
  });
  t.teardown(() => api.close());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  await servesTheConsole(t, (server.address() as AddressInfo).port);
});
