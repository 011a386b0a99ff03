// The console's only way to the broker: the operator API on the same origin
// (connect-src 'self'). The CSRF token lives in this module's memory only, never
// in storage a script from elsewhere could read; the session itself is an HttpOnly cookie.

export type Role = 'viewer' | 'operator' | 'admin';

export interface Operator {
  readonly name: string;
  readonly role: Role;
}

interface SessionAnswer extends Operator {
  readonly csrfToken: string;
}

/** A refused or failed API call: the HTTP status and the API's own message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

let csrfToken: string | null = null;
let onSignedOut: () => void = () => {};

/** Called when the API says the session is gone (401), so the page can ask to sign in again. */
export function whenSignedOut(fn: () => void): void {
  onSignedOut = fn;
}

function messageOf(body: unknown, status: number): string {
  if (body && typeof body === 'object') {
    const b = body as { error?: unknown; message?: unknown };
    if (typeof b.message === 'string') return b.message;
    if (typeof b.error === 'string') return b.error;
    if (b.error && typeof b.error === 'object' && typeof (b.error as { message?: unknown }).message === 'string') return (b.error as { message: string }).message;
  }
  return `HTTP ${status}`;
}

/** One API call: JSON in and out; a state change carries the CSRF token. */
export async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const data: unknown = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401 && path !== '/session') {
      csrfToken = null;
      onSignedOut();
    }
    throw new ApiError(res.status, messageOf(data, res.status));
  }
  return data as T;
}

/** `?a=1&b=2` of the parameters that are set. */
export function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The path of one named thing (device id, claim or grant name), escaped. */
export function named(prefix: string, name: string, suffix = ''): string {
  return `${prefix}/${encodeURIComponent(name)}${suffix}`;
}

export async function signIn(name: string, password: string): Promise<Operator> {
  const s = await call<SessionAnswer>('POST', '/session', { name, password });
  csrfToken = s.csrfToken;
  return { name: s.name, role: s.role };
}

export async function signOut(): Promise<void> {
  try {
    await call<unknown>('DELETE', '/session');
  } finally {
    csrfToken = null;
  }
}

/** The session a reload finds (its cookie survives, the CSRF token is asked for again), or null. */
export async function resume(): Promise<Operator | null> {
  try {
    const s = await call<SessionAnswer>('GET', '/session');
    csrfToken = s.csrfToken;
    return { name: s.name, role: s.role };
  } catch {
    return null;
  }
}

/** What a role may do: the API refuses the rest anyway; the page just does not offer it. */
export const may = {
  operate: (op: Operator) => op.role === 'operator' || op.role === 'admin',
  administer: (op: Operator) => op.role === 'admin',
};
