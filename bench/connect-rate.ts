/**
 * 2. Authenticated CONNECT rate: N fresh connections (each its own device and
 * token) with `inflight` CONNECTs outstanding; each sends DISCONNECT right after
 * its CONNACK. Reports connects/s and the broker's CPU time per connect (user +
 * system, from the broker child), so that the CPU authentication adds per
 * CONNECT (credbroker minus plain aedes) can be set against one raw node:crypto
 * verify of the same token.
 *
 * A third broker, `verify-floor` (plain aedes whose hook is one raw verify and
 * nothing else), is run alongside: the best any broker that checks a signature
 * on its main thread could do here, and so the yardstick for how much of the
 * gap to plain aedes is credbroker's own.
 */
import type { BrokerHandle, BrokerKind } from './lib/broker-proc.js';
import { warmupConnects } from './lib/fixture.js';
import { connectMany } from './lib/raw-client.js';
import { median, pairedRatio, sleep } from './lib/stats.js';
import { interleaved, kindsOf, startTarget, type Targets } from './lib/targets.js';

export interface ConnectRun { readonly rate: number; readonly cpuPerConnectUs: number; readonly ok: number; readonly refused: number; readonly errors: number }
export interface ConnectKindResult { readonly runs: ConnectRun[]; readonly rate: number; readonly cpuPerConnectUs: number }
export interface ConnectRateResult {
  readonly n: number;
  readonly inflight: number;
  readonly kinds: Partial<Record<BrokerKind, ConnectKindResult>>;
  /** credbroker / aedes connects per second (median of paired runs). */
  readonly ratio: number;
  readonly mosquittoRatio: number | null;
  /** verify-floor / aedes and credbroker / verify-floor connects per second. */
  readonly floorRatio: number;
  readonly overFloorRatio: number;
  /** Broker CPU per CONNECT of verify-floor over plain aedes, and of credbroker over verify-floor, µs. */
  readonly floorCpuUs: number;
  readonly overFloorCpuUs: number;
  /** Broker CPU per CONNECT added by credbroker over plain aedes, µs (median of paired runs). */
  readonly authCpuUs: number;
  readonly rawVerifyUs: number;
  readonly authCpuOverRawVerify: number;
}

/** Waits until the broker counts no client (or a short timeout), plus a settle for deferred work (audit flush). */
export async function settle(b: BrokerHandle, ms = 400): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const s = await b.stats();
    if (s.clients === null || s.clients === 0) break;
    await sleep(20);
  }
  await sleep(ms);
}

/** One measured run on a started broker: `warm` connects first (JIT, buffers), then `packets`, each with DISCONNECT after its CONNACK. */
export async function measureConnects(b: BrokerHandle, packets: readonly Buffer[], warm: readonly Buffer[], inflight: number): Promise<ConnectRun> {
  const w = await connectMany(b.port, warm, inflight, false);
  await w.drained;
  await settle(b);
  const before = await b.stats();
  const out = await connectMany(b.port, packets, inflight, false);
  await out.drained;
  await settle(b);
  const after = await b.stats();
  // Per accepted CONNECT: refused or failed ones cost less and would flatter the figure.
  if (out.ok === 0) throw new Error(`no CONNECT accepted of ${packets.length} (${out.refused} refused, ${out.errors} errors)`);
  return { rate: (out.ok * 1000) / out.ms, cpuPerConnectUs: (after.cpuUs - before.cpuUs) / out.ok, ok: out.ok, refused: out.refused, errors: out.errors };
}

export async function benchConnectRate(t: Targets, rawVerifyUs: number, opts: { n?: number; inflight?: number; runs?: number; warmup?: number } = {}): Promise<ConnectRateResult> {
  const n = Math.min(opts.n ?? 5000, t.fx.connects.length);
  const inflight = opts.inflight ?? 200;
  const warmup = opts.warmup ?? 300;
  const packets = t.fx.connects.slice(0, n);
  const warm = warmupConnects(t.fx, n, warmup);
  const results = await interleaved(t, opts.runs ?? 3, async (kind, run) => {
    const b = await startTarget(kind, t, `connect-${run}`);
    try {
      return await measureConnects(b, packets, warm, inflight);
    } finally {
      await b.close();
    }
  }, [...kindsOf(t), 'verify-floor']);
  const kinds: Partial<Record<BrokerKind, ConnectKindResult>> = {};
  for (const [k, runs] of Object.entries(results) as [BrokerKind, ConnectRun[]][]) {
    if (runs.length) kinds[k] = { runs, rate: median(runs.map((r) => r.rate)), cpuPerConnectUs: median(runs.map((r) => r.cpuPerConnectUs)) };
  }
  const a = results.aedes, c = results.credbroker, f = results['verify-floor'];
  const rate = (x: ConnectRun[]) => x.map((r) => r.rate);
  const cpuOver = (x: ConnectRun[], base: ConnectRun[]) => median(x.map((r, i) => r.cpuPerConnectUs - base[i]!.cpuPerConnectUs));
  const authCpuUs = cpuOver(c, a);
  return {
    n, inflight, kinds,
    ratio: pairedRatio(rate(c), rate(a)),
    floorRatio: pairedRatio(rate(f), rate(a)),
    overFloorRatio: pairedRatio(rate(c), rate(f)),
    floorCpuUs: cpuOver(f, a),
    overFloorCpuUs: cpuOver(c, f),
    mosquittoRatio: results.mosquitto.length ? pairedRatio(results.mosquitto.map((r) => r.rate), a.map((r) => r.rate)) : null,
    authCpuUs, rawVerifyUs, authCpuOverRawVerify: authCpuUs / rawVerifyUs,
  };
}
