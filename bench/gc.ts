/**
 * 2g. Garbage collection in a fresh broker process (issue 23, item 5): the
 * first N CONNECTs of a process just started (each its own device and token,
 * DISCONNECT after its CONNACK) against the next N on the same process, now
 * warm; the broker's CPU and V8 GC pause time per CONNECT in each, and its
 * scavenges and mark-compacts. Run on fresh processes with and without the
 * heap flags under test (`flags`), in alternating pairs, medians of the pairs.
 */
import { startBrokerProc, type BrokerStats } from './lib/broker-proc.js';
import type { GcTotals } from './lib/gc-watch.js';
import { connectMany } from './lib/raw-client.js';
import { median, pairedRatio } from './lib/stats.js';
import type { Targets } from './lib/targets.js';
import { settle } from './connect-rate.js';

export interface GcPhase {
  readonly ok: number;
  readonly cpuPerConnectUs: number;
  /** GC pause time per CONNECT, µs. */
  readonly gcPerConnectUs: number;
  readonly scavenges: number;
  readonly markCompacts: number;
}
export interface GcRun {
  readonly fresh: GcPhase;
  readonly warm: GcPhase;
  /** RSS of the idle broker just started, and after both phases (no client connected), bytes. */
  readonly idleRss: number;
  readonly afterRss: number;
}
export interface GcVariant { readonly runs: GcRun[]; readonly fresh: GcPhase; readonly warm: GcPhase; readonly idleRss: number; readonly afterRss: number }
export interface GcResult {
  readonly n: number;
  readonly inflight: number;
  readonly pairs: number;
  readonly flags: readonly string[];
  readonly without: GcVariant;
  readonly with: GcVariant;
  /** Paired medians: CPU per CONNECT of the fresh phase, with / without; and fresh / warm without. */
  readonly freshCpuRatio: number;
  readonly freshOverWarm: number;
}

const gcUs = (g: GcTotals | undefined) => ((g?.minorMs ?? 0) + (g?.majorMs ?? 0)) * 1000;

function phase(before: BrokerStats, after: BrokerStats, ok: number): GcPhase {
  if (ok === 0) throw new Error('no CONNECT accepted');
  return {
    ok,
    cpuPerConnectUs: (after.cpuUs - before.cpuUs) / ok,
    gcPerConnectUs: (gcUs(after.gc) - gcUs(before.gc)) / ok,
    scavenges: (after.gc?.minor ?? 0) - (before.gc?.minor ?? 0),
    markCompacts: (after.gc?.major ?? 0) - (before.gc?.major ?? 0),
  };
}

async function oneRun(t: Targets, flags: readonly string[], n: number, inflight: number): Promise<GcRun> {
  const b = await startBrokerProc('credbroker', { db: t.fx.db, nodeFlags: flags });
  try {
    await settle(b);
    const s0 = await b.stats();
    const first = await connectMany(b.port, t.fx.connects.slice(0, n), inflight, false);
    await first.drained;
    await settle(b);
    const s1 = await b.stats();
    const next = await connectMany(b.port, t.fx.connects.slice(n, 2 * n), inflight, false);
    await next.drained;
    await settle(b);
    const s2 = await b.stats();
    return { fresh: phase(s0, s1, first.ok), warm: phase(s1, s2, next.ok), idleRss: s0.rss, afterRss: s2.rss };
  } finally {
    await b.close();
  }
}

function summary(runs: GcRun[]): GcVariant {
  const m = (f: (p: GcPhase) => number, k: 'fresh' | 'warm') => median(runs.map((r) => f(r[k])));
  const ph = (k: 'fresh' | 'warm'): GcPhase => ({
    ok: m((p) => p.ok, k), cpuPerConnectUs: m((p) => p.cpuPerConnectUs, k), gcPerConnectUs: m((p) => p.gcPerConnectUs, k),
    scavenges: m((p) => p.scavenges, k), markCompacts: m((p) => p.markCompacts, k),
  });
  return { runs, fresh: ph('fresh'), warm: ph('warm'), idleRss: median(runs.map((r) => r.idleRss)), afterRss: median(runs.map((r) => r.afterRss)) };
}

export async function benchGc(t: Targets, flags: readonly string[], opts: { n?: number; inflight?: number; pairs?: number; log?: (m: string) => void } = {}): Promise<GcResult> {
  const n = Math.min(opts.n ?? 5000, Math.floor(t.fx.connects.length / 2));
  const inflight = opts.inflight ?? 200;
  const pairs = Math.max(5, opts.pairs ?? 5);
  const on: GcRun[] = [], off: GcRun[] = [];
  for (let i = 0; i < pairs; i++) {
    for (const withFlags of i % 2 ? [false, true] : [true, false]) {
      const r = await oneRun(t, withFlags ? flags : [], n, inflight);
      opts.log?.(`  ${withFlags ? 'with   ' : 'without'}: fresh ${r.fresh.cpuPerConnectUs.toFixed(0)} µs CPU, ${r.fresh.gcPerConnectUs.toFixed(0)} µs GC (${r.fresh.scavenges}+${r.fresh.markCompacts}); warm ${r.warm.cpuPerConnectUs.toFixed(0)} µs CPU, ${r.warm.gcPerConnectUs.toFixed(0)} µs GC (${r.warm.scavenges}+${r.warm.markCompacts}); idle RSS ${(r.idleRss / 2 ** 20).toFixed(1)} MiB`);
      (withFlags ? on : off).push(r);
    }
  }
  return {
    n, inflight, pairs, flags, without: summary(off), with: summary(on),
    freshCpuRatio: pairedRatio(on.map((r) => r.fresh.cpuPerConnectUs), off.map((r) => r.fresh.cpuPerConnectUs)),
    freshOverWarm: pairedRatio(off.map((r) => r.fresh.cpuPerConnectUs), off.map((r) => r.warm.cpuPerConnectUs)),
  };
}
