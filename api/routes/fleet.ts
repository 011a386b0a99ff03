import { UsageError } from '../../errors/index.js';
import { parseSessionQuery } from '../../broker/session-list.js';
import { fleetTotals, type FleetRates } from '../fleet-rates.js';
import { onlyParams } from '../input.js';
import { ok, type Route } from '../types.js';

const SESSION = { type: 'object', properties: { deviceId: { type: 'string' }, kind: { type: 'string' }, transport: { type: 'string' }, address: { type: 'string' }, connectedAt: { type: 'string' }, expiresAt: { type: 'string' } } };

/** Who is connected, and the fleet at a glance: `GET /sessions`, `GET /stats`. */
export function fleetRoutes(rates: FleetRates): Route[] {
  return [
    {
      method: 'GET', path: '/sessions', right: 'read',
      summary: 'Live sessions ordered by device id (as GET /sessions of the ops port and `credbroker sessions`).',
      query: { device: 'one device\'s session', limit: 'page size, 1-1000 (default 100)', after: 'the next cursor of the previous page' },
      answer: { type: 'object', required: ['sessions', 'next'], properties: { sessions: { type: 'array', items: SESSION }, next: { type: ['string', 'null'] } } },
      async handle({ req, deps }) {
        const q = parseSessionQuery(req.query);
        if (typeof q === 'string') throw new UsageError(q);
        return ok(await deps.sessions(q));
      },
    },
    {
      method: 'GET', path: '/stats', right: 'read',
      summary: 'The fleet at a glance: devices by status, live sessions, and connect and renewal rates per minute over the last 15 minutes.',
      answer: {
        type: 'object', required: ['devices', 'sessions', 'rates'],
        properties: {
          devices: { type: 'object', properties: { active: { type: 'integer' }, revoked: { type: 'integer' } } },
          sessions: { type: 'integer' },
          rates: { type: 'array', items: { type: 'object', properties: { at: { type: 'string' }, connectsPerMinute: { type: 'number' }, renewalsPerMinute: { type: 'number' } } } },
        },
      },
      async handle({ req, deps }) {
        onlyParams(req.query, []);
        const [devices, text] = await Promise.all([deps.reg.devices.countByStatus(), deps.metricsText()]);
        const totals = fleetTotals(text);
        return ok({ devices, sessions: totals.sessions, rates: rates.points(totals) });
      },
    },
  ];
}
