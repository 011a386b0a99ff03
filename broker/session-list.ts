import type { Client } from 'aedes';
import { isDeviceId, isGrantPrincipal } from '../registry/index.js';
import { remoteAddress } from './address.js';
import { sessionOf } from './session.js';
import type { Sessions } from './sessions.js';
import { transportOf, type Transport } from './transport.js';

/** One live session as `GET /sessions` and `credbroker sessions` show it. */
export interface SessionView {
  readonly deviceId: string;
  /** `device` (access token), `refresh` (refresh-credential session: renewal topics only), `grant` (a grant's token: `grant:NAME`). */
  readonly kind: string;
  readonly transport: Transport;
  readonly address: string;
  /** ISO 8601. */
  readonly connectedAt: string;
  /** ISO 8601: the token's expiry (a refresh session: its deadline); the broker closes the session then, plus the leeway. */
  readonly expiresAt: string;
}

export interface SessionPage {
  readonly sessions: SessionView[];
  /** Pass as `after` for the next page; null when this page is the last. */
  readonly next: string | null;
}

/** The most sessions one page holds: the response and the work per request stay bounded. */
export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

/**
 * A page of live sessions, ordered by device id; `after` is the last device id
 * of the previous page (a cursor that stays valid while devices come and go).
 * `device` picks that one device's session (`after` and `limit` do not apply).
 * Costs the page: the ids are kept in order (Sessions.idsAfter), not sorted per request.
 */
export function listSessions(sessions: Sessions, q: { limit: number; after?: string; device?: string }): SessionPage {
  if (q.device !== undefined) {
    const c = sessions.clientOf(q.device);
    const v = c && view(c);
    return { sessions: v ? [v] : [], next: null };
  }
  const views: SessionView[] = [];
  for (const id of sessions.idsAfter(q.after ?? '')) {
    // One more id than the page holds only tells that there is more.
    if (views.length === q.limit) return { sessions: views, next: views[views.length - 1]!.deviceId };
    const c = sessions.clientOf(id);
    const v = c && view(c);
    if (v) views.push(v);
  }
  return { sessions: views, next: null };
}

function view(client: Client): SessionView | null {
  const s = sessionOf(client);
  if (!s) return null;
  return {
    deviceId: s.deviceId,
    kind: s.kind === 'token' ? 'device' : s.kind,
    transport: transportOf(client),
    address: remoteAddress(client),
    connectedAt: new Date(s.connectedAt).toISOString(),
    expiresAt: new Date(s.expiresAt).toISOString(),
  };
}

/** `?limit=N&after=ID&device=ID` from `GET /sessions`, validated; a string is the one-line reason for a 400. */
export function parseSessionQuery(params: URLSearchParams): { limit: number; after?: string; device?: string } | string {
  for (const key of params.keys()) if (key !== 'limit' && key !== 'after' && key !== 'device') return `unknown parameter "${key.slice(0, 40)}" (limit, after, device)`;
  const rawLimit = params.get('limit');
  const limit = rawLimit === null ? DEFAULT_PAGE : Number(rawLimit);
  if (!/^\d+$/.test(rawLimit ?? '1') || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE) return `limit must be a whole number from 1 to ${MAX_PAGE}`;
  const after = params.get('after') ?? undefined;
  const device = params.get('device') ?? undefined;
  for (const [name, v] of [['after', after], ['device', device]] as const) {
    if (v !== undefined && !isDeviceId(v) && !isGrantPrincipal(v)) return `${name} must be a device id`;
  }
  return { limit, after, device };
}
