import { UsageError } from '../errors/index.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses `30s`, `15m`, `1h`, `7d` (also `250ms` and a bare number of seconds) into milliseconds.
 * @example parseDuration('15m') // 900000
 */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(text).trim());
  if (!m) throw new UsageError(`invalid ${what} "${text}": use a number with a unit, e.g. 30s, 15m, 1h, 7d`, 'ERR_INVALID_DURATION');
  const ms = Math.round(Number(m[1]) * UNITS[m[2] ?? 's']!);
  if (!(ms > 0)) throw new UsageError(`invalid ${what} "${text}": must be greater than zero`, 'ERR_INVALID_DURATION');
  return ms;
}

/** Formats milliseconds the way `parseDuration` reads them, e.g. 3600000 → "1h". */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
