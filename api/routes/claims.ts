import { claimJson } from '../../operations/json-views.js';
import { claimSummary, createClaim, listClaims, revokeClaim } from '../../operations/claim.js';
import { parseRevokeReason } from '../../operations/revoke-reason.js';
import { DEFAULT_BROKER_URL, parseBrokerUrl } from '../../provisioning/broker-url.js';
import { parseClaimName } from '../../registry/ids.js';
import { durationField, intField, objectBody, onlyFields, onlyParams, stringField, stringsField } from '../input.js';
import { ok, type Route } from '../types.js';

const CLAIM = { type: 'object', properties: { name: { type: 'string' }, profile: { type: 'string' }, state: { type: 'string' }, maxDevices: { type: 'integer' }, used: { type: 'integer' }, left: { type: 'integer' } } };

/** Provisioning by claim: `GET|POST /claims`, `POST /claims/{name}/revoke`. */
export const claimRoutes: Route[] = [
  {
    method: 'GET', path: '/claims', right: 'read',
    summary: 'Claims with their state, quota used and expiry (never a credential).',
    answer: { type: 'object', required: ['claims'], properties: { claims: { type: 'array', items: CLAIM } } },
    async handle({ req, deps }) {
      onlyParams(req.query, []);
      return ok({ claims: (await listClaims(deps.reg)).map(claimJson) });
    },
  },
  {
    method: 'POST', path: '/claims', right: 'act',
    summary: 'Create a claim, as `credbroker claim create`: the answer carries the claim credential, shown this once.',
    body: {
      type: 'object', required: ['name', 'profile'],
      properties: { name: { type: 'string' }, profile: { type: 'string' }, maxDevices: { type: 'integer' }, ttl: { type: 'string', description: 'e.g. 90d' }, idPattern: { type: 'string' }, allowList: { type: 'array', items: { type: 'string' } }, brokerUrl: { type: 'string' } },
    },
    answer: { ...CLAIM, properties: { ...CLAIM.properties, claimCredential: { type: 'string' } } },
    async handle({ req, deps, actor }) {
      const body = objectBody(req.body, true);
      onlyFields(body, ['name', 'profile', 'maxDevices', 'ttl', 'idPattern', 'allowList', 'brokerUrl']);
      const reg = deps.reg;
      const made = await createClaim(reg, {
        name: stringField(body, 'name', { required: true, max: 64 }),
        profile: stringField(body, 'profile', { required: true, max: 64 }),
        brokerUrl: parseBrokerUrl(stringField(body, 'brokerUrl', { max: 500 }) ?? DEFAULT_BROKER_URL),
        maxDevices: intField(body, 'maxDevices'),
        ttlMs: durationField(body, 'ttl'),
        idPattern: stringField(body, 'idPattern', { max: 256 }),
        allowList: stringsField(body, 'allowList', 100_000),
        actor,
      });
      return ok({ ...claimJson(await claimSummary(reg, made.claim, 0)), claimCredential: made.credential }, 201);
    },
  },
  {
    method: 'POST', path: '/claims/{name}/revoke', right: 'act',
    summary: 'Revoke a claim: no further devices through it (those it provisioned keep working).',
    body: { type: 'object', properties: { reason: { type: 'string', maxLength: 500 } } },
    answer: { type: 'object', properties: { name: { type: 'string' }, revoked: { type: 'boolean' } } },
    async handle({ req, params, deps, actor }) {
      const name = parseClaimName(params.name);
      const body = objectBody(req.body, false);
      onlyFields(body, ['reason']);
      const reason = parseRevokeReason(stringField(body, 'reason', { max: 1000 }), '"reason"');
      return ok({ name, revoked: await revokeClaim(deps.reg, name, reason, actor) });
    },
  },
];
