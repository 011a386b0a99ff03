/**
 * 8. What the resource limits cost (issue 10: at most 2 % of CONNECT rate and of
 * throughput). The same credbroker twice, in one run: with its limits
 * (`broker/limits.ts`: the packet guard on every connection, the per-client
 * outbound queue bounds on every delivery, the unauthenticated-socket gate)
 * and with `weaken.noLimits`, which switches all of them off. Paired runs,
 * each pair back to back and in alternating order (on, off / off, on), so that
 * drift and warm-up hit both alike; every figure is the median of the pairs'
 * ratios. Broker CPU per operation is reported beside the rates: on shared
 * cores it is the steadier of the two.
 */
import { measureConnects, type ConnectRun } from './connect-rate.js';
import { startBrokerProc } from './lib/broker-proc.js';
import { benchLimitsMicro, type LimitsMicroResult } from './limits-micro.js';
import { pairedRatio } from './lib/stats.js';
import type { Targets } from './lib/targets.js';
import { oneRun, PER_PUBLISHER, type ThroughputMode, type ThroughputRun } from './throughput.js';

export interface Paired<R> {
  readonly on: R[];
  readonly off: R[];
  /** Median of the per-pair ratios limits-on / limits-off. */
  readonly rateRatio: number;
  readonly cpuRatio: number;
}
export interface LimitsCostResult {
  readonly pairs: number;
  readonly connect: Paired<ConnectRun> & { readonly n: number; readonly inflight: number };
  readonly throughput: (Paired<ThroughputRun> & { readonly mode: ThroughputMode })[];
  readonly micro: LimitsMicroResult;
}

const start = (t: Targets, limits: boolean) =>
  startBrokerProc('credbroker', { db: t.fx.db, weaken: limits ? {} : { noLimits: true } });

/** Runs `fn` on a fresh broker with and without limits, `pairs` times, alternating which goes first. */
async function paired<R>(t: Targets, pairs: number, fn: (b: Awaited<ReturnType<typeof start>>) => Promise<R>): Promise<{ on: R[]; off: R[] }> {
  const on: R[] = [], off: R[] = [];
  for (let i = 0; i < pairs; i++) {
    for (const limits of i % 2 ? [false, true] : [true, false]) {
      const b = await start(t, limits);
      try {
        (limits ? on : off).push(await fn(b));
      } finally {
        await b.close();
      }
    }
  }
  return { on, off };
}

export async function benchLimitsCost(t: Targets, opts: { pairs?: number; n?: number; inflight?: number; modes?: ThroughputMode[]; log?: (m: string) => void } = {}): Promise<LimitsCostResult> {
  const pairs = Math.max(5, opts.pairs ?? 5);
  const n = Math.min(opts.n ?? 5000, t.fx.connects.length - 300);
  const inflight = opts.inflight ?? 200;
  const packets = t.fx.connects.slice(0, n);
  const warm = t.fx.connects.slice(n, n + 300);
  opts.log?.(`8a. CONNECT rate, limits on vs off (${pairs} pairs)`);
  const c = await paired(t, pairs, (b) => measureConnects(b, packets, warm, inflight));
  const connect = {
    ...c, n, inflight,
    rateRatio: pairedRatio(c.on.map((r) => r.rate), c.off.map((r) => r.rate)),
    cpuRatio: pairedRatio(c.on.map((r) => r.cpuPerConnectUs), c.off.map((r) => r.cpuPerConnectUs)),
  };
  const throughput = [];
  for (const mode of opts.modes ?? [{ qos: 0, sink: 'subscriber' }, { qos: 1, sink: 'subscriber' }] as ThroughputMode[]) {
    opts.log?.(`8b. throughput QoS ${mode.qos} → ${mode.sink}, limits on vs off (${pairs} pairs)`);
    const r = await paired(t, pairs, (b) => oneRun(b, t, mode, 8, PER_PUBLISHER[`${mode.qos}-${mode.sink}`]));
    throughput.push({
      ...r, mode,
      rateRatio: pairedRatio(r.on.map((x) => x.rate), r.off.map((x) => x.rate)),
      cpuRatio: pairedRatio(r.on.map((x) => x.cpuPerMsgUs), r.off.map((x) => x.cpuPerMsgUs)),
    });
  }
  opts.log?.('8c. the limits per operation, in-process');
  return { pairs, connect, throughput, micro: benchLimitsMicro() };
}
