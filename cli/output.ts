/** Human-readable output helpers: aligned tables, JSON, timestamps. Secrets never pass through here. */

export type Cell = string | number | null | undefined;

/** Columns padded to their widest cell, separated by two spaces; the last column is not padded. */
export function formatTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = (c: Cell) => (c === null || c === undefined || c === '' ? '-' : String(c));
  const all = [headers.map(String), ...rows.map((r) => headers.map((_, k) => text(r[k])))];
  const widths = headers.map((_, k) => Math.max(...all.map((r) => r[k]!.length)));
  return all
    .map((r) => r.map((c, k) => (k === r.length - 1 ? c : c.padEnd(widths[k]!))).join('  ').trimEnd())
    .join('\n');
}

export function printTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): void {
  if (rows.length) process.stdout.write(`${formatTable(headers, rows)}\n`);
}

/** Machine-readable output: the only thing written to stdout under `--json`. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Notes and warnings for the person at the terminal (stderr: never mixed into `--json` output). */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** `2024-05-01 12:00:00Z` (compact ISO 8601 for tables), or `-`. */
export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/** `1,234` */
export function count(n: number): string {
  // An integer without Intl: its first use loads locale data, about 20 ms of a short command.
  return Number.isInteger(n) ? String(n).replace(/\B(?=(\d{3})+$)/g, ',') : n.toLocaleString('en-US');
}

/** `n thing` / `n things` */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}
