import { UsageError } from '../errors/index.js';
import { parseDuration } from './duration.js';

/**
 * Reads a point in time for `--since`: an ISO 8601 date or date-time
 * (`2024-05-01`, `2024-05-01T12:00:00Z`) or a duration meaning "that long ago" (`1h`, `7d`).
 * @returns ms since epoch
 */
export function parseSince(text: string, now = Date.now(), what = '--since'): number {
  const t = String(text).trim();
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
  } else {
    try {
      return now - parseDuration(t, what);
    } catch {
      /* fall through to the combined message */
    }
  }
  throw new UsageError(`invalid ${what} "${t.slice(0, 60)}": use an ISO 8601 time (2024-05-01T12:00:00Z) or a duration meaning that long ago (30m, 1h, 7d)`);
}

/** ISO 8601 for an optional timestamp (ms). */
export function isoOrNull(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
