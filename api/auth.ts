import type { IncomingHttpHeaders } from 'node:http';
import { ApiError } from '../errors/index.js';
import { checkOperatorToken } from '../operations/operators.js';
import type { Stores } from '../registry/index.js';
import type { Caller } from './types.js';
import { SESSION_COOKIE, type WebSessions } from './web-sessions.js';

/** The value of one cookie, if the request carries it. */
function cookie(headers: IncomingHttpHeaders, name: string): string | undefined {
  for (const part of (headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Who the request comes from: `Authorization: Bearer cbop_…`, else the session
 * cookie; null when it carries neither. The operator is read from the registry
 * on every request, so a removed operator or a changed role takes effect at once.
 * @throws ApiError `ERR_API_UNAUTHENTICATED` for a credential that is bad, expired or no longer an operator's
 */
export async function identify(headers: IncomingHttpHeaders, reg: Stores, sessions: WebSessions): Promise<Caller | null> {
  const auth = headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer ([!-~]{1,200})$/i.exec(auth);
    if (!m) throw new ApiError('ERR_API_UNAUTHENTICATED', 'the Authorization header must be "Bearer cbop_…"');
    const operator = await checkOperatorToken(reg, m[1]!).catch(() => {
      throw new ApiError('ERR_API_UNAUTHENTICATED', 'unknown or expired operator API token');
    });
    return { operator, via: 'token' };
  }
  const id = cookie(headers, SESSION_COOKIE);
  if (id === undefined) return null;
  const session = sessions.use(id);
  const operator = session && await reg.operators.get(session.operator);
  if (!session || !operator) {
    sessions.end(id);
    throw new ApiError('ERR_API_UNAUTHENTICATED', 'the session has ended: sign in again');
  }
  return { operator, via: 'cookie', csrfToken: session.csrfToken, sessionId: id };
}

/** The Set-Cookie value for a new session (`Secure` when served over TLS). */
export function sessionCookie(id: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** The Set-Cookie value that removes it. */
export function clearedCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}
