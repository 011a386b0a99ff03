import { keyJson, profileJson } from '../../operations/json-views.js';
import { rotateKeys } from '../../tokens/keyring.js';
import { isoOrNull } from '../../util/time.js';
import { boolField, objectBody, onlyFields, onlyParams } from '../input.js';
import { ok, type Route } from '../types.js';

/** Profiles and signing keys: `GET /profiles`, `GET /keys`, `POST /keys/rotate` (admin). */
export const registryConfigRoutes: Route[] = [
  {
    method: 'GET', path: '/profiles', right: 'read',
    summary: 'Profiles with their patterns, token lifetime and how many devices use each.',
    answer: { type: 'object', required: ['profiles'], properties: { profiles: { type: 'array', items: { type: 'object' } } } },
    async handle({ req, deps }) {
      onlyParams(req.query, []);
      const reg = deps.reg;
      const [profiles, counts] = await Promise.all([reg.profiles.list(), reg.devices.countByProfile()]);
      return ok({ profiles: profiles.map((p) => profileJson(p, counts.get(p.name) ?? 0)) });
    },
  },
  {
    method: 'GET', path: '/keys', right: 'read',
    summary: 'Signing keys (public information only): the active one and retired ones with the time they verify until.',
    answer: { type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: { type: 'object', properties: { kid: { type: 'string' }, alg: { type: 'string' }, status: { type: 'string' } } } } } },
    async handle({ req, deps }) {
      onlyParams(req.query, []);
      const now = Date.now();
      return ok({ keys: (await deps.reg.keys.all()).map((k) => keyJson(k, now)) });
    },
  },
  {
    method: 'POST', path: '/keys/rotate', right: 'admin',
    summary: 'A new active signing key, as `credbroker keys rotate`; with {"now": true} every old key dies at once (key compromise).',
    body: { type: 'object', properties: { now: { type: 'boolean' } } },
    answer: { type: 'object', properties: { activeKid: { type: 'string' }, retired: { type: 'array' } } },
    async handle({ req, deps, actor }) {
      const body = objectBody(req.body, false);
      onlyFields(body, ['now']);
      const r = await rotateKeys(deps.reg, { immediate: boolField(body, 'now') ?? false, actor });
      return ok({ activeKid: r.activeKid, retired: r.retired.map((k) => ({ kid: k.kid, verifyUntil: isoOrNull(k.verifyUntil) })) });
    },
  },
];
