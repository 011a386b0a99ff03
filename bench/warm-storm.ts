/**
 * 3b. Reconnect storm of devices whose tokens this broker has already accepted
 * (issue #12): the fleet is online (5,000 connected, 200 in flight), drops all
 * at once (a network blip: every socket closed), then all 5,000 come back at
 * once with the same tokens. credbroker answers them from its verified-token
 * cache; plain aedes (no auth), Mosquitto and credbroker with the cache off
 * (`verifiedTokenCache: 0`: what the cache buys) take the same two waves. Rate =
 * devices / ms to the last CONNACK of the second wave; the kernel's listen-queue
 * overflows are counted over that wave.
 */
import { startBrokerProc, type BrokerKind } from './lib/broker-proc.js';
import { closeAll, connectMany } from './lib/raw-client.js';
import { median, pairedRatio, sleep } from './lib/stats.js';
import { storm } from './lib/storm.js';
import { kindsOf, startTarget, type Targets } from './lib/targets.js';
import { settle } from './connect-rate.js';

export interface WarmStormRun {
  readonly ms: number;
  /** Devices per second over the storm. */
  readonly rate: number;
  readonly ok: number;
  readonly refused: number;
  readonly errors: number;
  readonly overflows: number;
  readonly drops: number;
  /** Broker CPU per CONNECT over the storm, µs. */
  readonly cpuPerConnectUs: number;
  /** CONNECTs of the storm answered from the verified-token cache (credbroker), else null. */
  readonly cacheHits: number | null;
}

/** The brokers under test: the usual kinds, plus credbroker with its cache off. */
export type WarmStormKind = BrokerKind | 'credbroker-no-cache';

export interface WarmStormResult {
  readonly n: number;
  readonly kinds: Partial<Record<WarmStormKind, { runs: WarmStormRun[]; rate: number; ms: number; cpuPerConnectUs: number; overflows: number; allConnected: boolean }>>;
  /** credbroker rate / plain aedes rate, median of the paired runs. */
  readonly ratio: number;
  /** credbroker with the cache off: rate / plain aedes rate, and credbroker's rate / its own with the cache off. */
  readonly noCacheRatio: number;
  readonly cacheGain: number;
  /** Smallest share of a credbroker storm answered from the cache (1: every CONNECT). */
  readonly hitShare: number;
  readonly counterSource: string;
}

/** Runs per figure: at least five paired runs (the storm swings by tens of % on shared cores). */
export const WARM_STORM_MIN_RUNS = 5;

export async function benchWarmStorm(t: Targets, opts: { n?: number; runs?: number; inflight?: number } = {}): Promise<WarmStormResult> {
  const n = Math.min(opts.n ?? 5000, t.fx.connects.length);
  const packets = t.fx.connects.slice(0, n);
  let source = '';
  const start = (kind: WarmStormKind, run: number) => (kind === 'credbroker-no-cache'
    ? startBrokerProc('credbroker', { db: t.fx.db, config: { verifiedTokenCache: 0 } })
    : startTarget(kind, t, `warm-storm-${run}`));
  const once = async (kind: WarmStormKind, run: number): Promise<WarmStormRun> => {
    const b = await start(kind, run);
    try {
      // The fleet online: every token accepted once.
      const online = await connectMany(b.port, packets, opts.inflight ?? 200, true);
      if (online.ok !== n) throw new Error(`${kind}: only ${online.ok} of ${n} devices connected before the blip`);
      // The blip: everyone drops, the broker sees every session end.
      await closeAll(online.sockets);
      await settle(b, 200);
      const before = await b.stats();
      const out = await storm(b.port, packets);
      source = out.counterSource;
      await sleep(200); // work the broker does right after the CONNACKs (session set-up) is counted too
      const after = await b.stats();
      await closeAll(out.sockets);
      await settle(b, 100);
      const hits = after.verifiedTokenHits === undefined || before.verifiedTokenHits === undefined ? null : after.verifiedTokenHits - before.verifiedTokenHits;
      return {
        ms: out.ms, rate: (out.ok * 1000) / out.ms, ok: out.ok, refused: out.refused, errors: out.errors, overflows: out.overflows, drops: out.drops,
        cpuPerConnectUs: (after.cpuUs - before.cpuUs) / n, cacheHits: hits,
      };
    } finally {
      await b.close();
    }
  };
  // Interleaved (a, c, c-no-cache, m, a, ...) so that drift on the shared host hits all alike.
  const order: WarmStormKind[] = [...kindsOf(t), 'credbroker-no-cache'];
  const results = Object.fromEntries(order.map((k) => [k, [] as WarmStormRun[]])) as Record<WarmStormKind, WarmStormRun[]>;
  const runs = Math.max(WARM_STORM_MIN_RUNS, opts.runs ?? 0);
  for (let r = 0; r < runs; r++) for (const k of order) results[k].push(await once(k, r));
  const kinds: WarmStormResult['kinds'] = {};
  for (const [k, rs] of Object.entries(results) as [WarmStormKind, WarmStormRun[]][]) {
    kinds[k] = {
      runs: rs, rate: median(rs.map((r) => r.rate)), ms: median(rs.map((r) => r.ms)), cpuPerConnectUs: median(rs.map((r) => r.cpuPerConnectUs)),
      overflows: rs.reduce((a, r) => a + r.overflows, 0), allConnected: rs.every((r) => r.ok === n),
    };
  }
  const rates = (k: WarmStormKind) => results[k].map((r) => r.rate);
  return {
    n, kinds,
    ratio: pairedRatio(rates('credbroker'), rates('aedes')),
    noCacheRatio: pairedRatio(rates('credbroker-no-cache'), rates('aedes')),
    cacheGain: pairedRatio(rates('credbroker'), rates('credbroker-no-cache')),
    hitShare: Math.min(...results.credbroker.map((r) => (r.cacheHits ?? 0) / n)),
    counterSource: source,
  };
}
