/** Small statistics and formatting helpers shared by the benchmarks. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}

/** Median of the per-run ratios subject/baseline (runs are paired: measured back to back). */
export function pairedRatio(subject: readonly number[], baseline: readonly number[]): number {
  const n = Math.min(subject.length, baseline.length);
  const r: number[] = [];
  for (let i = 0; i < n; i++) if (baseline[i]! !== 0) r.push(subject[i]! / baseline[i]!);
  return median(r);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const ratio = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a');

/** One printed row: metric, subject figure, baseline figure, ratio, target, verdict. */
export interface Row {
  readonly bench: string;
  readonly metric: string;
  readonly credbroker: string;
  readonly baseline: string;
  readonly mosquitto?: string;
  readonly ratio: string;
  readonly target: string;
  readonly verdict: 'PASS' | 'MISS' | 'info' | 'skip';
}

export const verdict = (ok: boolean): 'PASS' | 'MISS' => (ok ? 'PASS' : 'MISS');

export function table(rows: readonly Row[]): string {
  const head: Row = { bench: 'bench', metric: 'metric', credbroker: 'credbroker', baseline: 'baseline', mosquitto: 'mosquitto', ratio: 'ratio', target: 'target', verdict: 'info' };
  const cols: (keyof Row)[] = ['bench', 'metric', 'credbroker', 'baseline', 'mosquitto', 'ratio', 'target', 'verdict'];
  const cell = (r: Row, c: keyof Row) => (c === 'verdict' && r === head ? 'verdict' : String(r[c] ?? ''));
  const widths = cols.map((c) => Math.max(...[head, ...rows].map((r) => cell(r, c).length)));
  const line = (r: Row) => cols.map((c, i) => cell(r, c).padEnd(widths[i]!)).join(' | ').trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('-+-');
  return [line(head), sep, ...rows.map(line)].join('\n');
}

/** A stopwatch in ms with sub-ms resolution. */
export const now = () => performance.now();
