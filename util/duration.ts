import { UsageError } from '../errors/index.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/**
 * Parses `30s`, `15m`, `1h`, `7d`, `250ms` and sums of them (`1h30m`) into
 * milliseconds. A bare number is refused: `3600` could mean seconds or
 * milliseconds, and a token lifetime off by a factor of 1000 is an outage.
 * @example parseDuration('15m') // 900000
 * @example parseDuration('1h30m') // 5400000
 */
export function parseDuration(text: string, what = 'duration'): number {
  const t = String(text).trim();
  if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/.test(t)) {
    if (/^\d+(?:\.\d+)?$/.test(t) && Number(t) > 0) throw new UsageError(`invalid ${what} "${text}": a duration needs a unit: ${t}s, ${t}m, ${t}h or ${t}d`, 'ERR_INVALID_DURATION');
    throw new UsageError(`invalid ${what} "${text}": use a number with a unit, e.g. 30s, 15m, 1h, 1h30m, 7d`, 'ERR_INVALID_DURATION');
  }
  let ms = 0;
  for (const [, n, unit] of t.matchAll(PART)) ms += Number(n) * UNITS[unit!]!;
  ms = Math.round(ms);
  if (!(ms > 0)) throw new UsageError(`invalid ${what} "${text}": must be greater than zero`, 'ERR_INVALID_DURATION');
  return ms;
}

/**
 * Formats milliseconds the way `parseDuration` reads them, largest unit first:
 * 5400000 → "1h30m". Days only from a week up (24h reads as written, not as "1d").
 */
export function formatDuration(ms: number): string {
  if (ms <= 0 || !Number.isFinite(ms)) return `${ms}ms`;
  const units = ms >= 7 * UNITS.d! ? (['d', 'h', 'm', 's', 'ms'] as const) : (['h', 'm', 's', 'ms'] as const);
  let rest = Math.round(ms);
  let out = '';
  for (const unit of units) {
    const size = UNITS[unit]!;
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
