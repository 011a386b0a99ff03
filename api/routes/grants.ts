import { DEFAULT_CONFIG } from '../../broker/config.js';
import { grantJson } from '../../operations/json-views.js';
import { issueGrant, revokeGrant } from '../../operations/grant.js';
import { parseRevokeReason } from '../../operations/revoke-reason.js';
import { grantStatus } from '../../registry/index.js';
import { UsageError } from '../../errors/index.js';
import { durationField, objectBody, onlyFields, onlyParams, param, stringField, stringsField } from '../input.js';
import { ok, type Route } from '../types.js';

const GRANT = { type: 'object', properties: { name: { type: 'string' }, principal: { type: 'string' }, status: { type: 'string' }, jti: { type: 'string' }, publish: { type: 'array' }, subscribe: { type: 'array' }, expiresAt: { type: 'string' } } };

/** Grants: `GET|POST /grants`, `POST /grants/{name}/revoke`. */
export const grantRoutes: Route[] = [
  {
    method: 'GET', path: '/grants', right: 'read',
    summary: 'Grants on record (never their tokens); active=true: only those neither expired nor revoked.',
    query: { active: 'true: only live grants' },
    answer: { type: 'object', required: ['grants'], properties: { grants: { type: 'array', items: GRANT } } },
    async handle({ req, deps }) {
      onlyParams(req.query, ['active']);
      const active = param(req.query, 'active');
      if (active !== undefined && active !== 'true' && active !== 'false') throw new UsageError('active must be true or false');
      const now = Date.now();
      const list = await deps.reg.grants.list({ activeAt: active === 'true' ? now : undefined });
      return ok({ grants: list.map((g) => grantJson(g, grantStatus(g, now))) });
    },
  },
  {
    method: 'POST', path: '/grants', right: 'act',
    summary: 'Issue a grant, as `credbroker grant`: the answer carries its token, shown this once.',
    body: {
      type: 'object', required: ['name', 'ttl'],
      properties: { name: { type: 'string' }, publish: { type: 'array', items: { type: 'string' } }, subscribe: { type: 'array', items: { type: 'string' } }, ttl: { type: 'string', description: 'e.g. 30m' }, within: { type: 'string' }, reason: { type: 'string' } },
    },
    answer: { ...GRANT, properties: { ...GRANT.properties, token: { type: 'string' } } },
    async handle({ req, deps, actor }) {
      const body = objectBody(req.body, true);
      onlyFields(body, ['name', 'publish', 'subscribe', 'ttl', 'within', 'reason']);
      const ttl = stringField(body, 'ttl', { required: true, max: 20 });
      const r = await issueGrant(await deps.issuer(), {
        name: stringField(body, 'name', { required: true, max: 64 }),
        publish: stringsField(body, 'publish') ?? [], subscribe: stringsField(body, 'subscribe') ?? [],
        ttlMs: durationField(body, 'ttl')!, ttlGiven: `ttl ${ttl}`,
        within: stringField(body, 'within', { max: 128 }), reason: stringField(body, 'reason', { max: 500 }),
        maxTokenBytes: DEFAULT_CONFIG.maxPasswordBytes, actor,
      });
      return ok({ ...grantJson(r.grant, 'active'), token: r.token }, 201);
    },
  },
  {
    method: 'POST', path: '/grants/{name}/revoke', right: 'act',
    summary: 'Revoke a grant: its session closes within a second.',
    body: { type: 'object', properties: { reason: { type: 'string', maxLength: 500 } } },
    answer: { type: 'object', properties: { name: { type: 'string' }, revoked: { type: 'boolean' } } },
    async handle({ req, params, deps, actor }) {
      const body = objectBody(req.body, false);
      onlyFields(body, ['reason']);
      const why = parseRevokeReason(stringField(body, 'reason', { max: 1000 }), '"reason"');
      const r = await revokeGrant(deps.reg, params.name!, { why, actor });
      return ok({ name: r.grant.name, revoked: r.changed });
    },
  },
];
