/**
 * Reads the broker's ops HTTP port (`credbroker serve --http-port`, 9100 by
 * default): what only the running broker knows, such as who is connected now.
 */
import { CredbrokerError, UsageError } from '../errors/index.js';
import type { SessionPage, SessionView } from '../broker/session-list.js';

export const DEFAULT_BROKER_HTTP = 'http://127.0.0.1:9100';

/** `--broker http://HOST:PORT`, checked: a typo is a usage error, not a network error. */
export function parseBrokerUrl(raw: string): URL {
  const url = URL.canParse(raw) ? new URL(raw) : null;
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash) {
    throw new UsageError(`invalid --broker "${raw.slice(0, 80)}": expected the broker's ops HTTP address, e.g. ${DEFAULT_BROKER_HTTP}`);
  }
  return url;
}

/**
 * `GET /sessions` with its query.
 * @throws CredbrokerError `ERR_BROKER_UNREACHABLE` (nothing listening, a timeout, or not a credbroker ops port)
 */
export async function fetchSessions(broker: URL, query: { limit?: number; after?: string; device?: string }, timeoutMs: number): Promise<SessionPage> {
  const url = new URL('sessions', broker.href.endsWith('/') ? broker : new URL(`${broker.href}/`));
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
  const where = broker.origin;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (err) {
    throw new CredbrokerError('ERR_BROKER_UNREACHABLE', `cannot reach the broker at ${where}: ${networkReason(err, timeoutMs)} (is "credbroker serve" running? --broker names its ops HTTP address)`);
  }
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (res.status === 400 && typeof (body as { error?: unknown })?.error === 'string') throw new UsageError((body as { error: string }).error);
  if (!res.ok || !Array.isArray((body as SessionPage | null)?.sessions)) {
    throw new CredbrokerError('ERR_BROKER_UNREACHABLE', `${where} did not answer GET /sessions as a credbroker broker does (HTTP ${res.status}): is --broker its ops HTTP port?`);
  }
  return body as SessionPage;
}

function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** How long `show` waits for the broker before it leaves the "connected" line out. */
const QUICK_MS = 500;

/**
 * The device's live session (null: not connected), or undefined when the broker
 * cannot say within a moment: for `show`, where the broker is a nice-to-have.
 */
export async function liveSession(broker: URL, deviceId: string): Promise<SessionView | null | undefined> {
  try {
    return (await fetchSessions(broker, { device: deviceId }, QUICK_MS)).sessions[0] ?? null;
  } catch {
    return undefined;
  }
}
