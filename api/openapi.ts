import type { Route, Schema } from './types.js';

const ERROR: Schema = { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } } };
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

/** Statuses every route may answer besides its success. */
const COMMON = {
  400: errorResponse('bad input: one line says which'),
  401: errorResponse('no credential, or one that is bad or expired'),
  403: errorResponse('the role lacks the right, or a cookie request without X-CSRF-Token'),
  404: errorResponse('no such device, claim, grant or profile'),
};

/**
 * The API as an OpenAPI 3.1 document, built from the route table itself, so a
 * route cannot exist undocumented (test/api-openapi.test.ts checks the served
 * document against what the port answers).
 */
export function openApiDocument(routes: readonly Route[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const pathParams = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const queryParams = Object.entries(r.query ?? {}).map(([name, description]) => ({ name, in: 'query', required: false, description, schema: { type: 'string' } }));
    const success = r.method === 'POST' && (r.path === '/claims' || r.path === '/grants') ? '201' : '200';
    (paths[`/api/v1${r.path}`] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      operationId: `${r.method.toLowerCase()}${r.path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)/g, (_m, c: string) => c.toUpperCase())}`,
      'x-credbroker-right': r.right,
      ...(r.right === 'open' ? { security: [] } : {}),
      ...(pathParams.length || queryParams.length ? { parameters: [...pathParams, ...queryParams] } : {}),
      ...(r.body ? { requestBody: { required: r.body.required !== undefined, content: { 'application/json': { schema: r.body } } } } : {}),
      responses: { [success]: { description: 'success', content: { 'application/json': { schema: r.answer } } }, ...COMMON },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'credbroker operator API', version,
      description: 'Operators sign in (POST /api/v1/session) or send Authorization: Bearer cbop_… (credbroker operator token NAME). '
        + 'State-changing requests made with the session cookie must carry X-CSRF-Token. Rights: read (viewer), act (operator), admin (admin).',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an operator API token, cbop_…' },
        cookie: { type: 'apiKey', in: 'cookie', name: 'credbroker_session' },
      },
      schemas: { Error: ERROR },
    },
    security: [{ bearer: [] }, { cookie: [] }],
    paths,
  };
}
