import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The cookie that carries a console session's id. */
export const SESSION_COOKIE = 'credbroker_session';
/** A session unused this long ends. */
export const SESSION_IDLE_MS = 30 * 60_000;
/** And every session ends this long after sign-in, used or not. */
export const SESSION_MAX_MS = 12 * 3_600_000;
/** Memory stays bounded: beyond this many, signing in ends the least recently used session. */
const MAX_SESSIONS = 10_000;
/**
 * And one operator's sign-ins (a script, a stolen password) cannot push everyone else out:
 * beyond this many of theirs, signing in ends their own least recently used session.
 */
export const MAX_SESSIONS_PER_OPERATOR = 32;

interface WebSession { readonly operator: string; readonly csrfToken: string; readonly startedAt: number; usedAt: number }

/**
 * Signed-in console sessions, in this process's memory (a restart signs
 * everyone out). The cookie holds a random id; only its SHA-256 is kept, so a
 * heap dump yields no usable cookie. Each session has its own CSRF token, which
 * state-changing cookie requests must echo in `X-CSRF-Token`.
 */
export class WebSessions {
  /** In least-recently-used order (Map keeps insertion order; a use re-inserts). */
  private readonly byHash = new Map<string, WebSession>();
  /** Live sessions per operator. */
  private readonly perOperator = new Map<string, number>();

  start(operator: string, now = Date.now()): { id: string; csrfToken: string } {
    this.sweep(now);
    if ((this.perOperator.get(operator) ?? 0) >= MAX_SESSIONS_PER_OPERATOR) {
      for (const [key, s] of this.byHash) if (s.operator === operator) { this.drop(key); break; }
    }
    while (this.byHash.size >= MAX_SESSIONS) this.drop(this.byHash.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(32).toString('base64url');
    this.byHash.set(hash(id), { operator, csrfToken, startedAt: now, usedAt: now });
    this.perOperator.set(operator, (this.perOperator.get(operator) ?? 0) + 1);
    return { id, csrfToken };
  }

  /** The session's operator and CSRF token, if it is live; a use keeps it alive. */
  use(id: string, now = Date.now()): { operator: string; csrfToken: string } | null {
    const key = hash(id);
    const s = this.byHash.get(key);
    if (!s) return null;
    if (now - s.usedAt > SESSION_IDLE_MS || now - s.startedAt > SESSION_MAX_MS) {
      this.drop(key);
      return null;
    }
    this.byHash.delete(key);
    s.usedAt = now;
    this.byHash.set(key, s);
    return { operator: s.operator, csrfToken: s.csrfToken };
  }

  end(id: string): void {
    this.drop(hash(id));
  }

  /** Drops expired sessions from the least recently used end. */
  private sweep(now: number): void {
    for (const [key, s] of this.byHash) {
      if (now - s.usedAt <= SESSION_IDLE_MS && now - s.startedAt <= SESSION_MAX_MS) break;
      this.drop(key);
    }
  }

  private drop(key: string): void {
    const s = this.byHash.get(key);
    if (!s) return;
    this.byHash.delete(key);
    const left = (this.perOperator.get(s.operator) ?? 1) - 1;
    if (left > 0) this.perOperator.set(s.operator, left);
    else this.perOperator.delete(s.operator);
  }

  get size(): number {
    return this.byHash.size;
  }
}

const hash = (id: string): string => createHash('sha256').update(id).digest('base64url');

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
