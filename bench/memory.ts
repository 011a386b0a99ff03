/**
 * 5. Memory per idle authenticated connection: C idle clients (keepalive 0)
 * held open; the broker's RSS and V8 heap before and after (after a full GC in
 * the broker child), divided by C.
 */
import type { BrokerKind } from './lib/broker-proc.js';
import { closeAll, connectMany } from './lib/raw-client.js';
import { median, pairedRatio, sleep } from './lib/stats.js';
import { interleaved, startTarget, type Targets } from './lib/targets.js';

export interface MemoryRun { readonly rssPerConn: number; readonly heapPerConn: number | null; readonly ok: number }
export interface MemoryResult {
  readonly n: number;
  readonly kinds: Partial<Record<BrokerKind, { runs: MemoryRun[]; rssPerConn: number; heapPerConn: number | null }>>;
  /** credbroker minus aedes, bytes per connection (median of paired runs). */
  readonly extraRssPerConn: number;
  readonly extraHeapPerConn: number;
  readonly rssRatio: number;
}

export async function benchMemory(t: Targets, opts: { n?: number; runs?: number } = {}): Promise<MemoryResult> {
  const n = Math.min(opts.n ?? 2000, t.fx.connects.length);
  const packets = t.fx.connects.slice(0, n);
  const results = await interleaved(t, opts.runs ?? 3, async (kind, run) => {
    const b = await startTarget(kind, t, `mem-${run}`);
    try {
      // Warm the broker up once (code, pools) so the first connections do not carry one-off costs.
      const w = await connectMany(b.port, packets.slice(0, 200), 200, false);
      await w.drained;
      await sleep(400);
      await b.gc();
      const before = await b.stats();
      const out = await connectMany(b.port, packets, 200, true);
      await sleep(600); // audit buffer flush, timers
      await b.gc();
      const after = await b.stats();
      await closeAll(out.sockets);
      return {
        ok: out.ok,
        rssPerConn: (after.rss - before.rss) / out.ok,
        heapPerConn: after.heapUsed === null || before.heapUsed === null ? null : (after.heapUsed - before.heapUsed) / out.ok,
      };
    } finally {
      await b.close();
    }
  });
  const kinds: MemoryResult['kinds'] = {};
  for (const [k, runs] of Object.entries(results) as [BrokerKind, MemoryRun[]][]) {
    if (runs.length) kinds[k] = { runs, rssPerConn: median(runs.map((r) => r.rssPerConn)), heapPerConn: runs[0]!.heapPerConn === null ? null : median(runs.map((r) => r.heapPerConn!)) };
  }
  const a = results.aedes, c = results.credbroker;
  return {
    n, kinds,
    extraRssPerConn: median(c.map((r, i) => r.rssPerConn - a[i]!.rssPerConn)),
    extraHeapPerConn: median(c.map((r, i) => r.heapPerConn! - a[i]!.heapPerConn!)),
    rssRatio: pairedRatio(c.map((r) => r.rssPerConn), a.map((r) => r.rssPerConn)),
  };
}
