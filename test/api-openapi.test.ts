// GET /api/v1/openapi.json is an OpenAPI 3.1 document that stays true: every
// route the router has is in it, every operation in it is answered by the
// router (no 404 for the route, no 405), and what a GET answers has the
// top-level fields its schema requires.
import t from 'tap';
import { addOperator, issueOperatorToken } from '../operations/operators.js';
import { startTestBroker } from './helpers/broker.js';

const tb = await startTestBroker();
t.teardown(() => tb.close());
await tb.provision(['oa-dev-1']);
await addOperator(tb.issuer.reg, 'root', 'admin');
const { token } = await issueOperatorToken(tb.issuer.reg, 'root');
const origin = `http://127.0.0.1:${tb.broker.ports.http}`;

interface Operation { responses: Record<string, { content?: { 'application/json': { schema: { required?: string[] } } } }>; 'x-credbroker-right': string; requestBody?: unknown }
const res = await fetch(`${origin}/api/v1/openapi.json`);
const doc = await res.json() as { openapi: string; paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, unknown> } };

t.test('the document', async (t) => {
  t.equal(res.status, 200);
  t.equal(doc.openapi, '3.1.0');
  t.ok(doc.components.securitySchemes.bearer && doc.components.securitySchemes.cookie, 'both credentials are described');
  const spec = [
    'get /api/v1/devices', 'get /api/v1/devices/{id}', 'post /api/v1/devices/{id}/revoke', 'post /api/v1/devices/{id}/restore',
    'get /api/v1/sessions', 'get /api/v1/audit', 'get /api/v1/profiles', 'get /api/v1/keys', 'post /api/v1/keys/rotate',
    'get /api/v1/claims', 'post /api/v1/claims', 'post /api/v1/claims/{name}/revoke', 'get /api/v1/grants', 'post /api/v1/grants', 'post /api/v1/grants/{name}/revoke',
    'post /api/v1/session', 'delete /api/v1/session', 'get /api/v1/openapi.json', 'get /api/v1/stats',
  ];
  const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
  for (const op of spec) t.ok(documented.includes(op), `SPEC's ${op} is documented`);
});

/** A concrete request for a documented path: parameters filled with values that exist (or harmlessly do not). */
const concrete = (path: string) => path.replace('{id}', 'oa-dev-1').replace('{name}', 'no-such-name');

t.test('every documented operation is routed (no 404 for the route, no 405)', async (t) => {
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      // Routed, yet refused for its body: that still proves the route exists, without changing the registry.
      const body = method === 'get' || method === 'delete' ? undefined : '{"__probe": true}';
      const r = await fetch(`${origin}${concrete(path)}`, { method: method.toUpperCase(), headers: { authorization: `Bearer ${token}`, ...(body && { 'content-type': 'application/json' }) }, body });
      const answer = await r.json() as { error?: { code: string } } & Record<string, unknown>;
      t.not(answer.error?.code, 'ERR_API_NO_ROUTE', `${method} ${path} is routed`);
      t.not(r.status, 405, `${method} ${path}: its method is allowed`);
      const required = op.responses['200']?.content?.['application/json'].schema.required;
      if (method === 'get' && r.status === 200 && required) for (const key of required) t.ok(key in answer, `${method} ${path} answers "${key}"`);
    }
  }
});

t.test('every route the router has is documented, and nothing else', async (t) => {
  // The router's own table, read from a live API instance of the same code.
  const { createApi } = await import('../api/index.js');
  const api = createApi({ reg: tb.issuer.reg, issuer: async () => tb.issuer, sessions: async () => ({ sessions: [], next: null }), metricsText: async () => '', secure: false });
  t.teardown(() => api.close());
  const routed = api.routes.map((r) => `${r.method.toLowerCase()} /api/v1${r.path}`).sort();
  const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)).sort();
  t.same(documented, routed);
  const unknown = await fetch(`${origin}/api/v1/devices/oa-dev-1/explode`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  t.equal(unknown.status, 404, 'an undocumented path is no route');
});
