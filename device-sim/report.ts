import { formatDuration } from '../util/duration.js';
import type { SimCleanup } from './cleanup.js';
import type { InvariantResult } from './invariants.js';
import type { RegistryCheck } from './preflight.js';
import type { Cohort } from './state.js';
import type { Summary } from './stats.js';

/** The outcome of `runSimulation`: `--json` prints exactly this. */
export interface SimReport {
  /** True when no invariant failed. */
  readonly ok: boolean;
  readonly settings: {
    url: string; devices: number; durationMs: number; tokenTtlMs: number | null; publishIntervalMs: number;
    leewayMs: number; deniedPublish: string; seed: number; source: 'provisioned' | 'credentials' | 'claimed';
  };
  readonly cohorts: Record<Cohort, number>;
  readonly invariants: InvariantResult[];
  readonly counts: {
    connects: number; publishes: number; observedMessages: number; renewals: number; renewRejected: number;
    refusals: number; subscribeDenials: number; publishKicks: number; revocationKicks: number; expiryKicks: number;
    /** Accepted claims (a `--claim` run). */
    claimed: number;
    unexpectedDisconnects: number; errors: number; failedAuthAttempts: number; failedAuthSkipped: number;
  };
  readonly latencyMs: { connect: Summary; renewalRoundTrip: Summary; revocationToKick: Summary };
  readonly timings: { provisionMs: number; connectWaveMs: number; scenarioMs: number; totalMs: number };
  readonly simEventLoopDelayMs: { p50: number; p99: number; max: number } | null;
  readonly startedAt: string;
  /** The sim's registry against the broker's (checked before provisioning), and what the run left there. */
  readonly registry: { readonly check: RegistryCheck; readonly cleanup: SimCleanup };
  /** Stopped early by Ctrl-C: verdicts cover the part that ran. */
  readonly interrupted: boolean;
}

/** What the scenario engine reports; runSimulation adds the registry check and clean-up. */
export type SimScenarioReport = Omit<SimReport, 'registry' | 'interrupted'>;

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
const fmt = (x: number | null) => (x === null ? '-' : String(x));

/** The human report: settings, a verdict table, counts and latency percentiles. */
export function formatReport(r: SimReport): string {
  const s = r.settings;
  const out: string[] = [];
  out.push(`credbroker sim — ${s.devices} devices (${s.source}), ${formatDuration(s.durationMs)} scenario, token ttl ${s.tokenTtlMs ? formatDuration(s.tokenTtlMs) : 'from files'}, publish every ${formatDuration(s.publishIntervalMs)}, seed ${s.seed}`);
  out.push(`broker ${s.url} (leeway ${s.leewayMs} ms, denied publish: ${s.deniedPublish})`);
  out.push(`registry: ${r.registry.check.result === 'match' ? 'same as the broker' : 'not checked'}: ${r.registry.check.detail}`);
  if (r.interrupted) out.push('INTERRUPTED (Ctrl-C): the scenario was cut short; verdicts cover the part that ran');
  out.push(`cohorts: ${Object.entries(r.cohorts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push('');
  const w = Math.max(...r.invariants.map((i) => i.name.length));
  out.push(`${pad('INVARIANT', w)}  VERDICT  DETAIL`);
  for (const i of r.invariants) {
    out.push(`${pad(i.name, w)}  ${pad(i.verdict.toUpperCase(), 7)}  ${i.detail}`);
    for (const e of i.examples) out.push(`${' '.repeat(w + 11)}- ${e}`);
  }
  out.push('');
  const c = r.counts;
  out.push(`connects ${c.connects}  publishes ${c.publishes}  observed ${c.observedMessages}  renewals ${c.renewals}  renew-rejected ${c.renewRejected}`);
  out.push(`refusals ${c.refusals}  subscribe-denials ${c.subscribeDenials}  publish-kicks ${c.publishKicks}  revocation-kicks ${c.revocationKicks}  expiry-kicks ${c.expiryKicks}`);
  if (s.source === 'claimed') out.push(`claimed ${c.claimed}`);
  out.push(`unexpected-disconnects ${c.unexpectedDisconnects}  errors ${c.errors}  deliberate failed auths ${c.failedAuthAttempts} sent, ${c.failedAuthSkipped} skipped (budget)`);
  out.push('');
  out.push(`${pad('LATENCY (ms)', 22)}${lpad('n', 7)}${lpad('p50', 9)}${lpad('p95', 9)}${lpad('p99', 9)}${lpad('max', 9)}`);
  const row = (label: string, x: Summary) => out.push(`${pad(label, 22)}${lpad(String(x.n), 7)}${lpad(fmt(x.p50), 9)}${lpad(fmt(x.p95), 9)}${lpad(fmt(x.p99), 9)}${lpad(fmt(x.max), 9)}`);
  row('connect', r.latencyMs.connect);
  row('renewal round trip', r.latencyMs.renewalRoundTrip);
  row('revocation to kick', r.latencyMs.revocationToKick);
  out.push('');
  const t = r.timings;
  const el = r.simEventLoopDelayMs;
  out.push(`timings: provision ${t.provisionMs} ms, connect wave ${t.connectWaveMs} ms, scenario ${t.scenarioMs} ms, total ${t.totalMs} ms${el ? `; sim event-loop delay p99 ${el.p99} ms, max ${el.max} ms` : ''}`);
  out.push(`clean-up: ${r.registry.cleanup.detail}`);
  const failed = r.invariants.filter((i) => i.verdict === 'fail');
  // A run cut short proves nothing either way: an invariant may fail only because its event never came.
  if (r.interrupted) {
    out.push(`RESULT: INTERRUPTED (Ctrl-C) after ${formatDuration(Math.max(t.scenarioMs, 1))} of ${formatDuration(s.durationMs)}: saw ${c.connects} connects, ${c.publishes} publishes, ${c.renewals} renewals, ${c.revocationKicks} revocation kicks`
      + `${failed.length ? `; not holding when stopped: ${failed.map((i) => i.id).join(', ')}` : ''}`);
  } else out.push(failed.length ? `RESULT: FAIL (${failed.map((i) => i.id).join(', ')})` : 'RESULT: PASS');
  return `${out.join('\n')}\n`;
}
