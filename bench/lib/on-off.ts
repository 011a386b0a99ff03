/**
 * One broker with a switch on and off, in one run: CONNECT rate and CPU per
 * CONNECT, then QoS 0 and QoS 1 throughput to one subscriber. Paired runs,
 * each pair back to back on fresh brokers and in alternating order (on, off /
 * off, on), so that drift and warm-up hit both alike; every ratio is the
 * median of the pairs' ratios on / off. Broker CPU per operation is reported
 * beside the rates: on shared cores it is the steadier of the two.
 */
import { measureConnects, type ConnectRun } from '../connect-rate.js';
import { oneRun, PER_PUBLISHER, type ThroughputMode, type ThroughputRun } from '../throughput.js';
import type { BrokerHandle } from './broker-proc.js';
import { fmt, median, pairedRatio, ratio, verdict, type Row } from './stats.js';
import type { Targets } from './targets.js';

export interface Paired<R> {
  readonly on: R[];
  readonly off: R[];
  /** Median of the per-pair ratios on / off. */
  readonly rateRatio: number;
  readonly cpuRatio: number;
}
export interface OnOffResult {
  readonly pairs: number;
  readonly connect: Paired<ConnectRun> & { readonly n: number; readonly inflight: number };
  readonly throughput: (Paired<ThroughputRun> & { readonly mode: ThroughputMode })[];
}
export interface OnOffOptions {
  /** A fresh broker with the switch on (true) or off. */
  readonly start: (on: boolean) => Promise<BrokerHandle>;
  readonly pairs?: number;
  readonly n?: number;
  readonly inflight?: number;
  readonly modes?: ThroughputMode[];
  /** Log lines start with this (the section's number and name). */
  readonly label: string;
  readonly log?: (m: string) => void;
}

/** Runs `fn` on a fresh broker with the switch on and off, `pairs` times, alternating which goes first. */
async function paired<R>(start: OnOffOptions['start'], pairs: number, fn: (b: BrokerHandle) => Promise<R>): Promise<{ on: R[]; off: R[] }> {
  const on: R[] = [], off: R[] = [];
  for (let i = 0; i < pairs; i++) {
    for (const switched of i % 2 ? [false, true] : [true, false]) {
      const b = await start(switched);
      try {
        (switched ? on : off).push(await fn(b));
      } finally {
        await b.close();
      }
    }
  }
  return { on, off };
}

export async function benchOnOff(t: Targets, o: OnOffOptions): Promise<OnOffResult> {
  const pairs = Math.max(5, o.pairs ?? 5);
  const n = Math.min(o.n ?? 5000, t.fx.connects.length - 300);
  const inflight = o.inflight ?? 200;
  const packets = t.fx.connects.slice(0, n);
  const warm = t.fx.connects.slice(n, n + 300);
  o.log?.(`${o.label}: CONNECT rate, on vs off (${pairs} pairs)`);
  const c = await paired(o.start, pairs, (b) => measureConnects(b, packets, warm, inflight));
  const connect = {
    ...c, n, inflight,
    rateRatio: pairedRatio(c.on.map((r) => r.rate), c.off.map((r) => r.rate)),
    cpuRatio: pairedRatio(c.on.map((r) => r.cpuPerConnectUs), c.off.map((r) => r.cpuPerConnectUs)),
  };
  const throughput = [];
  for (const mode of o.modes ?? [{ qos: 0, sink: 'subscriber' }, { qos: 1, sink: 'subscriber' }] as ThroughputMode[]) {
    o.log?.(`${o.label}: throughput QoS ${mode.qos} → ${mode.sink}, on vs off (${pairs} pairs)`);
    const r = await paired(o.start, pairs, (b) => oneRun(b, t, mode, 8, PER_PUBLISHER[`${mode.qos}-${mode.sink}`]));
    throughput.push({
      ...r, mode,
      rateRatio: pairedRatio(r.on.map((x) => x.rate), r.off.map((x) => x.rate)),
      cpuRatio: pairedRatio(r.on.map((x) => x.cpuPerMsgUs), r.off.map((x) => x.cpuPerMsgUs)),
    });
  }
  return { pairs, connect, throughput };
}

/**
 * The table rows of an on/off result: rates must not fall below `1 - tolerance`
 * of off, CPU per operation must not rise above `1 + tolerance` of it.
 */
export function onOffRows(bench: string, what: string, r: OnOffResult, tolerance: number): Row[] {
  const m = (xs: { rate: number }[]) => fmt(median(xs.map((x) => x.rate)));
  const lo = `≥ ${(1 - tolerance).toFixed(2)}×`, hi = `≤ ${(1 + tolerance).toFixed(2)}×`;
  const c = r.connect;
  const rows: Row[] = [
    { bench, metric: `connects/s, ${what} (${c.n}, ${c.inflight} in flight; ${r.pairs} pairs)`, credbroker: m(c.on), baseline: m(c.off), ratio: ratio(c.rateRatio), target: lo, verdict: verdict(c.rateRatio >= 1 - tolerance) },
    { bench, metric: `  broker CPU µs per CONNECT, ${what}`, credbroker: fmt(median(c.on.map((x) => x.cpuPerConnectUs)), 1), baseline: fmt(median(c.off.map((x) => x.cpuPerConnectUs)), 1), ratio: ratio(c.cpuRatio), target: hi, verdict: verdict(c.cpuRatio <= 1 + tolerance) },
  ];
  for (const t of r.throughput) {
    const incomplete = t.on.some((x) => x.delivered < x.expected) || t.off.some((x) => x.delivered < x.expected);
    rows.push({ bench, metric: `QoS ${t.mode.qos} msgs/s → 1 sub, ${what}${incomplete ? ' [incomplete]' : ''}`, credbroker: m(t.on), baseline: m(t.off), ratio: ratio(t.rateRatio), target: lo, verdict: verdict(t.rateRatio >= 1 - tolerance) });
    rows.push({ bench, metric: `  QoS ${t.mode.qos}: broker CPU µs per message, ${what}`, credbroker: fmt(median(t.on.map((x) => x.cpuPerMsgUs)), 2), baseline: fmt(median(t.off.map((x) => x.cpuPerMsgUs)), 2), ratio: ratio(t.cpuRatio), target: hi, verdict: verdict(t.cpuRatio <= 1 + tolerance) });
  }
  return rows;
}
