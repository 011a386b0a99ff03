import { UsageError } from '../../errors/index.js';
import { auditJson } from '../../operations/json-views.js';
import { describe, parseSubjectId } from '../../registry/ids.js';
import { parseSince } from '../../util/time.js';
import { limitParam, onlyParams, param } from '../input.js';
import { ok, type Route } from '../types.js';

export const auditRoutes: Route[] = [{
  method: 'GET', path: '/audit', right: 'read',
  summary: 'The audit log, newest first: device, action (exact, or a prefix ending in *), since (ISO 8601 or a duration ago), limit (default 100, at most 1000), after (the previous page\'s next: an event id).',
  query: { device: 'a device id or grant:NAME', action: 'device.revoke, or a prefix such as device.*', since: '2024-05-01T12:00:00Z or 1h', limit: 'page size, 1-1000 (default 100)', after: 'the next cursor of the previous page' },
  answer: {
    type: 'object', required: ['events', 'next'],
    properties: { events: { type: 'array', items: { type: 'object', properties: { id: { type: 'integer' }, at: { type: 'string' }, actor: { type: 'string' }, action: { type: 'string' }, deviceId: { type: ['string', 'null'] }, details: { type: ['object', 'null'] } } } }, next: { type: ['string', 'null'] } },
  },
  async handle({ req, deps }) {
    const q = req.query;
    onlyParams(q, ['device', 'action', 'since', 'limit', 'after']);
    const device = param(q, 'device');
    const action = param(q, 'action');
    if (action !== undefined && !/^[A-Za-z0-9._-]{1,64}\*?$|^\*$/.test(action)) throw new UsageError(`invalid action ${describe(action)}: give an action such as device.revoke, or a prefix ending in *`);
    const since = param(q, 'since');
    const after = param(q, 'after');
    if (after !== undefined && !/^[1-9]\d{0,15}$/.test(after)) throw new UsageError(`invalid after ${describe(after)}: the cursor is an audit event id (the "next" of the previous page)`);
    const limit = limitParam(q, 100, 1000);
    const rows = await deps.reg.audit.query({
      deviceId: device === undefined ? undefined : parseSubjectId(device),
      action: action === '*' ? undefined : action,
      since: since === undefined ? undefined : parseSince(since, Date.now(), 'since'),
      before: after === undefined ? undefined : Number(after),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    return ok({ events: page.map(auditJson), next: rows.length > limit ? String(page[page.length - 1]!.id) : null });
  },
}];
