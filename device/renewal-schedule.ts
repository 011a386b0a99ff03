/**
 * When to renew an access token.
 *
 * A device renews at `renewAtFraction` (default 80 %) of its token's lifetime,
 * plus or minus `jitterFraction` (default 10 %) of the lifetime drawn at random.
 * Why 80 %: it leaves a fifth of the lifetime to retry a renewal that timed out
 * or was rate limited before the broker closes the session at expiry. Why
 * jitter: devices provisioned or restarted together would otherwise all renew
 * in the same second, forever.
 *
 * The lifetime is read from the token itself (`exp - iat`, both set by the
 * broker's clock), so it does not depend on the device's clock; the expiry is
 * an absolute time, so the device needs a roughly right clock (SNTP is enough:
 * the broker allows 5 s of leeway, and a device whose clock is far off still
 * recovers, because the broker answers CONNACK 4 and the device falls back to
 * its refresh credential).
 */
export interface ScheduleInput {
  /** Access token expiry, ms since the epoch. */
  readonly expiresAtMs: number;
  /** The token's full lifetime in ms (exp - iat). */
  readonly lifetimeMs: number;
  readonly nowMs: number;
  /** Default 0.8. */
  readonly renewAtFraction?: number;
  /** Default 0.1 (± of the lifetime). */
  readonly jitterFraction?: number;
  /** Uniform random in [0, 1); injectable for tests. */
  readonly random?: () => number;
}

export const DEFAULT_RENEW_AT_FRACTION = 0.8;
export const DEFAULT_JITTER_FRACTION = 0.1;

/**
 * Milliseconds from `nowMs` until the renewal should be sent. Never negative,
 * never later than 5 % of the lifetime (at most 30 s) before expiry. A token
 * already past its renewal point (a device restarting with an old token) is
 * renewed soon, but still at a random instant within the jitter window, so a
 * fleet restarting together does not renew in one burst.
 */
export function renewalDelayMs(input: ScheduleInput): number {
  const { expiresAtMs, nowMs } = input;
  const lifetimeMs = Math.max(0, input.lifetimeMs);
  const fraction = clamp(input.renewAtFraction ?? DEFAULT_RENEW_AT_FRACTION, 0, 1);
  const jitter = clamp(input.jitterFraction ?? DEFAULT_JITTER_FRACTION, 0, 1);
  const random = input.random ?? Math.random;
  const remaining = expiresAtMs - nowMs;
  if (!(remaining > 0)) return 0;
  const latest = Math.max(0, remaining - Math.min(lifetimeMs * 0.05, 30_000));
  const target = expiresAtMs - lifetimeMs * (1 - fraction) + (random() * 2 - 1) * jitter * lifetimeMs - nowMs;
  if (target <= 0) return Math.floor(Math.min(latest, random() * jitter * lifetimeMs));
  return Math.floor(Math.min(target, latest));
}

/** Token lifetime in ms from its `iat`/`exp` claims (payload decoded, signature not checked), or null. */
export function tokenLifetimeMs(accessToken: string): number | null {
  const claims = decodeClaims(accessToken);
  if (!claims || typeof claims.iat !== 'number' || typeof claims.exp !== 'number' || claims.exp <= claims.iat) return null;
  return (claims.exp - claims.iat) * 1000;
}

function decodeClaims(jwt: string): { iat?: unknown; exp?: unknown } | null {
  try {
    const payload = jwt.split('.')[1];
    if (!payload) return null;
    const obj = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown;
    return obj !== null && typeof obj === 'object' ? (obj as { iat?: unknown; exp?: unknown }) : null;
  } catch {
    return null;
  }
}

function clamp(x: number, lo: number, hi: number): number {
  return Number.isFinite(x) ? Math.min(hi, Math.max(lo, x)) : lo;
}
