import { UsageError } from '../../errors/index.js';
import { restoreDevice, revokeDevices } from '../../operations/revoke.js';
import { deviceSummary } from '../../operations/show.js';
import { parseRevokeReason } from '../../operations/revoke-reason.js';
import { deviceJson, deviceSummaryJson } from '../../operations/json-views.js';
import { describe, isDeviceId, parseDeviceId } from '../../registry/ids.js';
import type { DeviceStatus } from '../../registry/index.js';
import { limitParam, objectBody, onlyFields, onlyParams, param, stringField } from '../input.js';
import { ok, type ApiDeps, type Route } from '../types.js';

const DEVICE = { type: 'object', required: ['id', 'profile', 'status', 'connected'], properties: { id: { type: 'string' }, profile: { type: 'string' }, status: { type: 'string', enum: ['active', 'revoked'] }, connected: { type: 'boolean' } } };
export const MAX_DEVICE_PAGE = 1000;

/** Whether each device has a live session now (asked of the broker, in parallel). */
async function connectedOf(deps: ApiDeps, ids: readonly string[]): Promise<Set<string>> {
  const pages = await Promise.all(ids.map((device) => deps.sessions({ limit: 1, device })));
  return new Set(pages.flatMap((p) => p.sessions.map((s) => s.deviceId)));
}

export const deviceRoutes: Route[] = [
  {
    method: 'GET', path: '/devices', right: 'read',
    summary: 'Devices ordered by id, a page at a time: search (an id prefix), status, profile, limit (default 50, at most 1000), after (the previous page\'s next).',
    query: { search: 'the start of a device id', status: 'active | revoked', profile: 'a profile name', limit: 'page size, 1-1000 (default 50)', after: 'the next cursor of the previous page' },
    answer: { type: 'object', required: ['devices', 'next'], properties: { devices: { type: 'array', items: DEVICE }, next: { type: ['string', 'null'] } } },
    async handle({ req, deps }) {
      const q = req.query;
      onlyParams(q, ['search', 'status', 'profile', 'limit', 'after']);
      const status = param(q, 'status');
      if (status !== undefined && status !== 'active' && status !== 'revoked') throw new UsageError('status must be active or revoked');
      const search = param(q, 'search');
      if (search !== undefined && !/^[A-Za-z0-9._:-]{1,128}$/.test(search)) throw new UsageError(`invalid search ${describe(search)}: give the start of a device id`);
      const after = param(q, 'after');
      if (after !== undefined && !isDeviceId(after)) throw new UsageError(`invalid after ${describe(after)}: the cursor is a device id (the "next" of the previous page)`);
      const profile = param(q, 'profile');
      const limit = limitParam(q, 50, MAX_DEVICE_PAGE);
      const reg = deps.reg;
      if (profile !== undefined) await reg.profiles.require(profile);
      // One row more than the page: it only tells whether there is a next page.
      const rows = await reg.devices.list({ status: status as DeviceStatus | undefined, profile, prefix: search, after, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const connected = await connectedOf(deps, page.map((d) => d.id));
      return ok({ devices: page.map((d) => ({ ...deviceJson(d), connected: connected.has(d.id) })), next: rows.length > limit ? page[page.length - 1]!.id : null });
    },
  },
  {
    method: 'GET', path: '/devices/{id}', right: 'read',
    summary: 'One device: its profile, live tokens (jti and expiry, never a token), refresh credential states, live session (null when not connected) and recent audit.',
    answer: { type: 'object', required: ['device', 'liveTokens', 'refreshCredentials', 'recentAudit', 'session'], properties: { device: DEVICE, profile: { type: ['object', 'null'] }, liveTokens: { type: 'array' }, refreshCredentials: { type: 'array' }, recentAudit: { type: 'array' }, session: { type: ['object', 'null'] } } },
    async handle({ params, deps }) {
      const id = parseDeviceId(params.id);
      const [s, live] = await Promise.all([deviceSummary(deps.reg, id, { auditLimit: 50 }), deps.sessions({ limit: 1, device: id })]);
      const json = deviceSummaryJson(s);
      return ok({ ...json, device: { ...(json.device as object), connected: live.sessions.length > 0 }, session: live.sessions[0] ?? null });
    },
  },
  {
    method: 'POST', path: '/devices/{id}/revoke', right: 'act',
    summary: 'Revoke a device as `credbroker revoke` does: its tokens and refresh credentials die and its sessions close within a second.',
    body: { type: 'object', properties: { reason: { type: 'string', maxLength: 500 } } },
    answer: { type: 'object', properties: { deviceId: { type: 'string' }, revoked: { type: 'boolean' }, tokensRevoked: { type: 'integer' } } },
    async handle({ req, params, deps, actor }) {
      const id = parseDeviceId(params.id);
      const body = objectBody(req.body, false);
      onlyFields(body, ['reason']);
      const [r] = await revokeDevices(deps.reg, [id], parseRevokeReason(stringField(body, 'reason', { max: 1000 }), '"reason"'), actor);
      return ok({ deviceId: r!.deviceId, revoked: r!.changed, tokensRevoked: r!.tokensRevoked });
    },
  },
  {
    method: 'POST', path: '/devices/{id}/restore', right: 'act',
    summary: 'Re-enable a revoked device as `credbroker restore` does (its old tokens stay dead).',
    answer: { type: 'object', properties: { deviceId: { type: 'string' }, restored: { type: 'boolean' } } },
    async handle({ req, params, deps, actor }) {
      const id = parseDeviceId(params.id);
      onlyFields(objectBody(req.body, false), []);
      return ok({ deviceId: id, restored: await restoreDevice(deps.reg, id, actor) });
    },
  },
];
