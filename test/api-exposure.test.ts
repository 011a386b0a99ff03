// Exposure of the ops port (SPEC "Operators, the API and the console"): on loopback
// it stays as it is; bound elsewhere it is served only over TLS, /metrics and
// /sessions need an operator credential, and /healthz, /readyz and the JWKS stay open.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { validateConfig } from '../broker/index.js';
import { addOperator, issueOperatorToken } from '../operations/operators.js';
import { startTestBroker } from './helpers/broker.js';
import { makeDevCerts } from './helpers/dev-certs.js';

t.test('off loopback without TLS: refused at start with one line', async (t) => {
  t.throws(() => validateConfig({ httpHost: '0.0.0.0' }), { code: 'ERR_CONFIG', message: /^--http-host 0\.0\.0\.0 is not loopback: .*--http-tls-cert and --http-tls-key/ });
  t.throws(() => validateConfig({ httpHost: '10.1.2.3', httpTlsCert: '/x.crt' }), { code: 'ERR_CONFIG', message: /needs both --http-tls-cert and --http-tls-key/ });
  t.doesNotThrow(() => validateConfig({ httpHost: '127.0.0.5' }), 'any loopback address needs no TLS');
  t.doesNotThrow(() => validateConfig({ httpHost: '0.0.0.0', httpPort: null }), 'nor a port that is off');
});

t.test('off loopback with TLS: HTTPS; /metrics and /sessions need an operator; health and JWKS open', async (t) => {
  const certs = makeDevCerts();
  t.teardown(() => certs.remove());
  const ca = readFileSync(certs.caCert);
  const tb = await startTestBroker({ host: '127.0.0.1', httpHost: '0.0.0.0', httpTlsCert: certs.serverCert, httpTlsKey: certs.serverKey });
  t.teardown(() => tb.close());
  const port = tb.broker.ports.http!;
  const { password } = await addOperator(tb.issuer.reg, 'vic', 'viewer');
  const { token } = await issueOperatorToken(tb.issuer.reg, 'vic');

  const get = (path: string, headers: Record<string, string> = {}, method = 'GET', body?: string) => new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, ca, headers, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject).on('timeout', () => req.destroy(new Error('timed out')));
    req.end(body);
  });

  for (const path of ['/healthz', '/readyz', '/.well-known/jwks.json']) t.equal((await get(path)).status, 200, `${path} stays open`);
  for (const path of ['/metrics', '/sessions']) {
    const refused = await get(path);
    t.equal(refused.status, 401, `${path} without a credential: 401`);
    t.match(JSON.parse(refused.body), { error: { code: 'ERR_API_UNAUTHENTICATED' } });
    t.equal((await get(path, { authorization: 'Bearer cbop_wrong' })).status, 401, `${path} with a bad token: 401`);
    t.equal((await get(path, { authorization: `Bearer ${token}` })).status, 200, `${path} with an operator's token: 200`);
  }
  t.equal((await get('/api/v1/devices')).status, 401, 'the API over TLS');
  t.equal((await get('/api/v1/devices', { authorization: `Bearer ${token}` })).status, 200);
  const signIn = await get('/api/v1/session', { 'content-type': 'application/json' }, 'POST', JSON.stringify({ name: 'vic', password }));
  t.equal(signIn.status, 200);
  t.match(String(signIn.headers['set-cookie']), /; Secure/, 'the session cookie is Secure over TLS');
  const cookie = String(signIn.headers['set-cookie']).split(';')[0]!;
  t.equal((await get('/metrics', { cookie })).status, 200, 'the console\'s cookie counts as a credential too');

  const plain = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, () => 'refused');
  t.not(plain, 200, 'no plain HTTP on the TLS port');
});
