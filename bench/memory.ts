/**
 * 5. Memory per idle authenticated connection: C idle clients (keepalive 0,
 * one subscription each) held open on a fresh broker; the broker's RSS and V8
 * heap before and after (after a full GC in the broker child), divided by C.
 * With `breakdown`, the last run of each Node broker also takes a heap snapshot
 * before and after and attributes the heap per connection by kind of object.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import type { BrokerHandle, BrokerKind, BrokerStats } from './lib/broker-proc.js';
import { heapClasses, perConnection } from './lib/heap-classes.js';
import { heapOwners, snapshotIds, type OwnerRow } from './lib/heap-owners.js';
import { closeAll, connectMany, subscribePacket } from './lib/raw-client.js';
import { median, pairedRatio, sleep } from './lib/stats.js';
import { interleaved, startTarget, type Targets } from './lib/targets.js';

export interface MemoryRun { readonly rssPerConn: number; readonly heapPerConn: number | null; readonly ok: number; readonly subscribed: number }
export type HeapBreakdown = { name: string; bytes: number; count: number }[];
export interface MemoryResult {
  readonly n: number;
  readonly kinds: Partial<Record<BrokerKind, { runs: MemoryRun[]; rssPerConn: number; heapPerConn: number | null; breakdown?: HeapBreakdown; owners?: OwnerRow[] }>>;
  /** credbroker minus aedes, bytes per connection (median of paired runs). */
  readonly extraRssPerConn: number;
  readonly extraHeapPerConn: number;
  readonly rssRatio: number;
}

const WARMUP = 200;

/** Subscribes each open socket to its own filter and resolves with the number of SUBACKs that granted it. */
function subscribeEach(sockets: readonly (Socket | null)[], filters: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    let pending = 0, granted = 0;
    const timer = setTimeout(() => resolve(granted), 60_000);
    const one = () => { if (--pending === 0) { clearTimeout(timer); resolve(granted); } };
    sockets.forEach((s, i) => {
      if (!s) return;
      pending++;
      let head: Buffer | null = null;
      const onData = (d: Buffer) => {
        head = head ? Buffer.concat([head, d]) : d;
        if (head.length < 5) return;
        s.off('data', onData);
        if (head[0] === 0x90 && head[4]! < 0x80) granted++;
        one();
      };
      s.on('data', onData);
      s.once('close', () => { if (head === null || head.length < 5) one(); });
      s.write(subscribePacket(filters[i]!, 1));
    });
    if (pending === 0) { clearTimeout(timer); resolve(0); }
  });
}

/**
 * Warms `b` up with `warm`, then holds one idle connection per packet, each
 * subscribed to its filter: the broker's stats before and after (each after a
 * full GC), read when `atBefore` and `atAfter` run. The connections are closed
 * before it returns.
 */
export async function holdIdle(b: BrokerHandle, warm: readonly Buffer[], packets: readonly Buffer[], filters: readonly string[], at: { atBefore?: () => Promise<void>; atAfter?: (ok: number) => Promise<void> } = {}): Promise<{ before: BrokerStats; after: BrokerStats; ok: number; subscribed: number }> {
  // Warm the broker up once (code, pools) so the first connections do not carry one-off costs.
  const w = await connectMany(b.port, warm, warm.length, false);
  await w.drained;
  await sleep(400);
  await b.gc();
  const before = await b.stats();
  await at.atBefore?.();
  const out = await connectMany(b.port, packets, 200, true);
  try {
    const subscribed = await subscribeEach(out.sockets, filters);
    await sleep(600); // audit buffer flush, timers
    await b.gc();
    const after = await b.stats();
    await at.atAfter?.(out.ok);
    return { before, after, ok: out.ok, subscribed };
  } finally {
    await closeAll(out.sockets);
  }
}

export async function benchMemory(t: Targets, opts: { n?: number; runs?: number; breakdown?: boolean } = {}): Promise<MemoryResult> {
  // The first WARMUP devices warm the broker up; the next n are measured.
  const n = Math.min(opts.n ?? 10_000, t.fx.connects.length - WARMUP);
  const warm = t.fx.connects.slice(0, WARMUP);
  const packets = t.fx.connects.slice(WARMUP, WARMUP + n);
  const filters = t.fx.devices.slice(WARMUP, WARMUP + n).map((d) => `devices/${d.deviceId}/commands/#`);
  const runs = opts.runs ?? 3;
  const snapDir = opts.breakdown ? mkdtempSync(join(tmpdir(), 'credbroker-heap-')) : null;
  const breakdowns: Partial<Record<BrokerKind, HeapBreakdown>> = {};
  const owners: Partial<Record<BrokerKind, OwnerRow[]>> = {};
  /** One fresh broker, n idle connections; with `snapDir`, heap snapshots around them instead of figures (they grow the RSS). */
  const measure = async (kind: BrokerKind, tag: string, snapDir: string | null): Promise<MemoryRun> => {
    const b = await startTarget(kind, t, tag);
    const snap = snapDir && b.snapshot ? (name: string) => snapshot(b, join(snapDir, `${kind}-${name}.heapsnapshot`)) : null;
    try {
      let snapBefore: Awaited<ReturnType<typeof snapshot>> | null = null;
      const h = await holdIdle(b, warm, packets, filters, {
        atBefore: async () => {
          snapBefore = snap ? await snap('before') : null;
          if (snapBefore) rmSync(snapBefore.file, { force: true });
        },
        atAfter: async (ok) => {
          if (!snap || !snapBefore) return;
          const after = await snap('after');
          breakdowns[kind] = perConnection(snapBefore.classes, after.classes, ok);
          owners[kind] = heapOwners(snapBefore.ids, after.file, ok);
          rmSync(after.file, { force: true });
        },
      });
      return {
        ok: h.ok, subscribed: h.subscribed,
        rssPerConn: (h.after.rss - h.before.rss) / h.ok,
        heapPerConn: h.after.heapUsed === null || h.before.heapUsed === null ? null : (h.after.heapUsed - h.before.heapUsed) / h.ok,
      };
    } finally {
      await b.close();
    }
  };
  try {
    const results = await interleaved(t, runs, (kind, run) => measure(kind, `mem-${run}`, null));
    // The breakdown from runs of their own, after the measured ones (Node brokers only).
    if (snapDir) for (const kind of ['aedes', 'credbroker'] as const) await measure(kind, 'mem-heap', snapDir);
    const kinds: MemoryResult['kinds'] = {};
    for (const [k, rs] of Object.entries(results) as [BrokerKind, MemoryRun[]][]) {
      if (rs.length) kinds[k] = { runs: rs, rssPerConn: median(rs.map((r) => r.rssPerConn)), heapPerConn: rs[0]!.heapPerConn === null ? null : median(rs.map((r) => r.heapPerConn!)), ...(breakdowns[k] && { breakdown: breakdowns[k] }), ...(owners[k] && { owners: owners[k] }) };
    }
    const a = results.aedes, c = results.credbroker;
    return {
      n, kinds,
      extraRssPerConn: median(c.map((r, i) => r.rssPerConn - a[i]!.rssPerConn)),
      extraHeapPerConn: median(c.map((r, i) => r.heapPerConn! - a[i]!.heapPerConn!)),
      rssRatio: pairedRatio(c.map((r) => r.rssPerConn), a.map((r) => r.rssPerConn)),
    };
  } finally {
    if (snapDir) rmSync(snapDir, { recursive: true, force: true });
  }
}

/** Writes a snapshot (after a full GC) and reads its kinds and node ids; the caller deletes the file (a snapshot of thousands of connections is large). */
async function snapshot(b: BrokerHandle, file: string) {
  await b.gc();
  await b.snapshot!(file);
  return { file, classes: heapClasses(file), ids: snapshotIds(file) };
}
