/**
 * 8p. What broker/aedes-patches/ change (issue 22: no publish or CONNECT figure
 * worse by more than 2 %). The same credbroker twice, in one run: on aedes
 * patched at load time, and on aedes 1.2.0 as published
 * (`weaken.unpatchedAedes`, set here in code and nowhere else). Paired runs,
 * bench/lib/on-off.ts.
 */
import { startBrokerProc } from './lib/broker-proc.js';
import { benchOnOff, type OnOffResult } from './lib/on-off.js';
import type { Targets } from './lib/targets.js';

export function benchPatches(t: Targets, opts: { pairs?: number; log?: (m: string) => void } = {}): Promise<OnOffResult> {
  return benchOnOff(t, {
    ...opts, label: '8p. aedes patches',
    start: (patched) => startBrokerProc('credbroker', { db: t.fx.db, weaken: patched ? {} : { unpatchedAedes: true } }),
  });
}
