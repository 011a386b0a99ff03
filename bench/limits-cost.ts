/**
 * 8. What the resource limits cost (issue 10: at most 2 % of CONNECT rate and of
 * throughput). The same credbroker twice, in one run: with its limits
 * (`broker/limits.ts`: the packet guard on every connection, the per-client
 * outbound queue bounds on every delivery, the unauthenticated-socket gate)
 * and with `weaken.noLimits`, which switches all of them off (paired runs,
 * bench/lib/on-off.ts).
 */
import { startBrokerProc } from './lib/broker-proc.js';
import { benchOnOff, type OnOffResult } from './lib/on-off.js';
import { benchLimitsMicro, type LimitsMicroResult } from './limits-micro.js';
import type { Targets } from './lib/targets.js';
import type { ThroughputMode } from './throughput.js';

export interface LimitsCostResult extends OnOffResult {
  readonly micro: LimitsMicroResult;
}

export async function benchLimitsCost(t: Targets, opts: { pairs?: number; n?: number; inflight?: number; modes?: ThroughputMode[]; log?: (m: string) => void } = {}): Promise<LimitsCostResult> {
  const r = await benchOnOff(t, {
    ...opts, label: '8. limits',
    start: (limits) => startBrokerProc('credbroker', { db: t.fx.db, weaken: limits ? {} : { noLimits: true } }),
  });
  opts.log?.('8c. the limits per operation, in-process');
  return { ...r, micro: benchLimitsMicro() };
}
