/**
 * 3. Reconnect storm: every device connects at once (all sockets opened in one
 * go, as after a broker restart or a network flap). Time until the last CONNACK,
 * and the kernel's listen-queue overflow counter before and after (must not move:
 * the broker listens with backlog 4096).
 */
import type { BrokerKind } from './lib/broker-proc.js';
import { closeAll } from './lib/raw-client.js';
import { storm } from './lib/storm.js';
import { median, pairedRatio, sleep } from './lib/stats.js';
import { interleaved, startTarget, type Targets } from './lib/targets.js';
import { settle } from './connect-rate.js';

export interface StormRun { readonly ms: number; readonly ok: number; readonly refused: number; readonly errors: number; readonly overflows: number; readonly drops: number }
export interface StormResult {
  readonly n: number;
  readonly kinds: Partial<Record<BrokerKind, { runs: StormRun[]; ms: number; overflows: number; allConnected: boolean }>>;
  /** credbroker time / aedes time (median of paired runs; lower is better). */
  readonly timeRatio: number;
  readonly counterSource: string;
}

export async function benchReconnectStorm(t: Targets, opts: { n?: number; runs?: number } = {}): Promise<StormResult> {
  const n = Math.min(opts.n ?? 5000, t.fx.connects.length);
  const packets = t.fx.connects.slice(0, n);
  let source = '';
  const results = await interleaved(t, opts.runs ?? 3, async (kind, run) => {
    const b = await startTarget(kind, t, `storm-${run}`);
    try {
      await sleep(100);
      const out = await storm(b.port, packets);
      source = out.counterSource;
      await closeAll(out.sockets);
      await settle(b, 100);
      return { ms: out.ms, ok: out.ok, refused: out.refused, errors: out.errors, overflows: out.overflows, drops: out.drops };
    } finally {
      await b.close();
    }
  });
  const kinds: StormResult['kinds'] = {};
  for (const [k, runs] of Object.entries(results) as [BrokerKind, StormRun[]][]) {
    if (runs.length) kinds[k] = { runs, ms: median(runs.map((r) => r.ms)), overflows: runs.reduce((s, r) => s + r.overflows, 0), allConnected: runs.every((r) => r.ok === n) };
  }
  return { n, kinds, timeRatio: pairedRatio(results.credbroker.map((r) => r.ms), results.aedes.map((r) => r.ms)), counterSource: source };
}
