/** Starts one broker under test by name. */
import { startBrokerProc, type BrokerHandle, type BrokerKind } from './broker-proc.js';
import type { Fixture } from './fixture.js';
import { startMosquitto, type MosquittoSetup } from './mosquitto.js';

export interface Targets {
  readonly fx: Fixture;
  readonly mosquitto: MosquittoSetup | null;
  /** Folder for broker CPU profiles (BENCH_CPU_PROF), or undefined. */
  readonly cpuProfDir?: string;
}

export function startTarget(kind: BrokerKind, t: Targets, tag: string): Promise<BrokerHandle> {
  if (kind === 'mosquitto') {
    if (!t.mosquitto) throw new Error('mosquitto is not installed');
    return startMosquitto(t.mosquitto, tag);
  }
  return startBrokerProc(kind, { db: t.fx.db, cpuProfDir: t.cpuProfDir ? `${t.cpuProfDir}/${kind}` : undefined });
}

/** The kinds to run: the subject, its baseline, and Mosquitto when installed. */
export const kindsOf = (t: Targets): BrokerKind[] => (t.mosquitto ? ['aedes', 'credbroker', 'mosquitto'] : ['aedes', 'credbroker']);

/** Runs `fn` once per kind per run, interleaved (a, c, m, a, c, m, ...) so drift hits all alike. */
export async function interleaved<R>(t: Targets, runs: number, fn: (kind: BrokerKind, run: number) => Promise<R>, kinds = kindsOf(t)): Promise<Record<BrokerKind, R[]>> {
  const out = { aedes: [], credbroker: [], mosquitto: [], 'verify-floor': [] } as Record<BrokerKind, R[]>;
  for (let r = 0; r < runs; r++) for (const k of kinds) out[k].push(await fn(k, r));
  return out;
}
