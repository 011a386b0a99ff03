/**
 * The V8 collections of this process as Node reports them ('gc' performance
 * entries): scavenges (young generation) and mark-compacts (whole heap), their
 * count and pause time. A broker child under test runs it so that the bench can
 * read its GC cost per CONNECT (bench/gc.ts).
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';

/** Pause times in ms. */
export interface GcTotals { readonly minor: number; readonly minorMs: number; readonly major: number; readonly majorMs: number }

/** Starts counting; the object it returns grows as collections are reported (read it, do not keep a copy). */
export function watchGc(): GcTotals {
  const totals = { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) { totals.minor++; totals.minorMs += e.duration; }
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) { totals.major++; totals.majorMs += e.duration; }
    }
  }).observe({ entryTypes: ['gc'] });
  return totals;
}
