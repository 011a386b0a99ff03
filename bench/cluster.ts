/**
 * 9. Scaling out (issue 13): `credbroker serve --workers N --bus redis://…`
 * against today's single process, under a CONNECT load from several processes.
 * - CONNECT/s for one process (no bus) and for each worker count, with the
 *   broker's CPU per CONNECT summed over the primary and its workers, and
 *   Redis' CPU per CONNECT apart (both read from /proc);
 * - the same at the largest worker count with the old per-CONNECT takeover
 *   broadcast (`weaken.broadcastTakeover`): before and after the targeted takeover;
 * - Mosquitto (password file) under the same load, when installed;
 * - QoS 0 and QoS 1 throughput to one subscriber with the publishers spread over
 *   the workers (the kernel hands connections out in turn: with N workers,
 *   (N-1)/N of the messages cross the bus), against one process: at the largest
 *   worker count, or at every count (and Mosquitto) when BENCH_WORKERS is given;
 * - with BENCH_WORKERS given, RSS per idle connection (one subscription each)
 *   at every worker count, the node's and its Redis' apart, against one process
 *   and Mosquitto;
 * - revocation latency with the devices spread over the workers.
 * Each node gets a fresh redis-server, so that its CPU is the node's alone.
 */
import { availableParallelism } from 'node:os';
import { settle } from './connect-rate.js';
import type { BrokerHandle } from './lib/broker-proc.js';
import { startLoadProcs, type LoadProcs } from './lib/load-procs.js';
import { holdIdle } from './memory.js';
import { startMosquitto } from './lib/mosquitto.js';
import { startNodeProc } from './lib/node-proc.js';
import { cpuUs, rssBytes } from './lib/proc-stat.js';
import { startRedisServer, type RedisServer } from './lib/redis-server.js';
import { median, pairedRatio } from './lib/stats.js';
import type { Targets } from './lib/targets.js';
import { benchRevocation, type RevocationResult } from './revocation-latency.js';
import { oneRun, PER_PUBLISHER, type ThroughputMode } from './throughput.js';

/** What runs under the load: one process without a bus, N workers on a bus (targeted or broadcast takeover), or Mosquitto. */
export interface ClusterKind {
  readonly name: string;
  readonly workers: number | null;
  readonly broadcast?: boolean;
  readonly mosquitto?: boolean;
}

export interface ClusterConnectRun {
  readonly rate: number;
  readonly ok: number;
  readonly refused: number;
  readonly errors: number;
  /** Primary + workers (or the one process), µs per accepted CONNECT. */
  readonly cpuPerConnectUs: number;
  /** Of which the primary (node:cluster's primary accepts every connection and hands it to a worker; 0 without a bus). */
  readonly primaryCpuPerConnectUs: number;
  /** redis-server, µs per accepted CONNECT (0 without a bus). */
  readonly redisCpuPerConnectUs: number;
}

export interface ClusterKindResult {
  readonly runs: ClusterConnectRun[];
  readonly rate: number;
  readonly cpuPerConnectUs: number;
  readonly primaryCpuPerConnectUs: number;
  readonly redisCpuPerConnectUs: number;
}

export interface ClusterThroughput {
  readonly mode: ThroughputMode;
  readonly workers: number;
  readonly single: { rate: number; cpuPerMsgUs: number; complete: boolean };
  readonly cluster: { rate: number; cpuPerMsgUs: number; redisCpuPerMsgUs: number; complete: boolean };
  /** Mosquitto under the same load (BENCH_WORKERS given, Mosquitto installed). */
  readonly mosquitto?: { rate: number; cpuPerMsgUs: number; complete: boolean };
  /** cluster / single msgs/s (median of paired runs). */
  readonly ratio: number;
}

export interface ClusterResult {
  readonly cpus: number;
  readonly loadProcs: number;
  readonly n: number;
  readonly inflight: number;
  readonly workerCounts: number[];
  readonly kinds: Record<string, ClusterKindResult>;
  /** Each kind's connects/s over one process's (median of paired runs). */
  readonly ratioToSingle: Record<string, number>;
  /** Each worker count's connects/s over the next smaller count's (median of paired runs). */
  readonly ratioToPrevious: Record<string, number>;
  readonly throughput: ClusterThroughput[];
  /** RSS per idle connection for one process, each worker count and Mosquitto (BENCH_WORKERS given; null otherwise). */
  readonly memory: ClusterMemory | null;
  readonly revocation: RevocationResult & { workers: number };
}

export interface ClusterMemory {
  readonly n: number;
  /** By kind name: the broker's processes' RSS per connection, and its redis-server's (0 without a bus); medians. */
  readonly kinds: Record<string, { rssPerConn: number; redisRssPerConn: number; subscribed: number }>;
}

export const SINGLE = 'one process, no bus';
export const workersKind = (n: number) => `${n} worker${n === 1 ? '' : 's'}, bus`;
export const broadcastKind = (n: number) => `${n} workers, broadcast takeover`;

/** BENCH_WORKERS (default `1,2`). */
export function workerCounts(env = process.env.BENCH_WORKERS): number[] {
  const list = (env ?? '1,2').split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isInteger(n) || n < 1 || n > 256)) throw new Error(`BENCH_WORKERS=${env}: expected worker counts such as 1,2,4,8`);
  return [...new Set(list)].sort((a, b) => a - b);
}

/** BENCH_LOAD_PROCS (default: half the cores, 2 to 8). */
export function loadProcCount(env = process.env.BENCH_LOAD_PROCS): number {
  if (env) {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`BENCH_LOAD_PROCS=${env}: expected 1-64`);
    return n;
  }
  return Math.min(8, Math.max(2, Math.floor(availableParallelism() / 2)));
}

/** A node (or Mosquitto), with its redis-server when it has a bus. */
async function startKind(k: ClusterKind, t: Targets, tag: string): Promise<{ b: BrokerHandle; redis: RedisServer | null; close(): Promise<void> }> {
  if (k.mosquitto) {
    const b = await startMosquitto(t.mosquitto!, tag);
    return { b, redis: null, close: () => b.close() };
  }
  const redis = k.workers === null ? null : await startRedisServer();
  try {
    const b = await startNodeProc({
      db: t.fx.db, dir: t.fx.dir, workers: k.workers, bus: redis?.url ?? null, tag,
      broadcastTakeover: !!k.broadcast,
    });
    return { b, redis, async close() { await b.close(); await redis?.close(); } };
  } catch (err) {
    await redis?.close();
    throw err;
  }
}

/** Idle connections with one subscription each, held on a fresh node (or Mosquitto) per kind, `runs` times interleaved. */
async function clusterMemory(t: Targets, kinds: readonly ClusterKind[], opts: { runs: number; log: (msg: string) => void }): Promise<ClusterMemory> {
  const n = Math.min(5000, t.fx.devices.length - 300);
  const warm = t.fx.connects.slice(n, n + 300);
  const packets = t.fx.connects.slice(0, n);
  const filters = t.fx.devices.slice(0, n).map((d) => `devices/${d.deviceId}/commands/#`);
  const runs: Record<string, { rssPerConn: number; redisRssPerConn: number; subscribed: number }[]> = Object.fromEntries(kinds.map((k) => [k.name, []]));
  for (let r = 0; r < opts.runs; r++) {
    for (const k of kinds) {
      opts.log(`9. cluster: memory, ${n} idle connections with one subscription each → ${k.name} (run ${r + 1}/${opts.runs})`);
      const node = await startKind(k, t, `cluster-mem-${r}-${k.name.replace(/\W+/g, '-')}`);
      try {
        const redisRss = () => { const pid = node.redis?.pid(); return pid ? rssBytes(pid) : 0; };
        let redis0 = 0, redis1 = 0;
        const h = await holdIdle(node.b, warm, packets, filters, { atBefore: async () => { redis0 = redisRss(); }, atAfter: async () => { redis1 = redisRss(); } });
        runs[k.name]!.push({ rssPerConn: (h.after.rss - h.before.rss) / h.ok, redisRssPerConn: (redis1 - redis0) / h.ok, subscribed: h.subscribed });
      } finally {
        await node.close();
      }
    }
  }
  return {
    n,
    kinds: Object.fromEntries(Object.entries(runs).map(([name, xs]) => [name, { rssPerConn: median(xs.map((x) => x.rssPerConn)), redisRssPerConn: median(xs.map((x) => x.redisRssPerConn)), subscribed: Math.min(...xs.map((x) => x.subscribed)) }])),
  };
}

const redisCpu = (r: RedisServer | null) => { const pid = r?.pid(); return pid ? cpuUs(pid) : 0; };

async function measureConnects(load: LoadProcs, b: BrokerHandle, redis: RedisServer | null, packets: readonly Buffer[], warm: readonly Buffer[], inflight: number): Promise<ClusterConnectRun> {
  await load.connect([b.port], warm, inflight);
  await settle(b);
  const before = await b.stats();
  const r0 = redisCpu(redis);
  const p0 = redis ? cpuUs(b.pid) : 0;
  const out = await load.connect([b.port], packets, inflight);
  await settle(b);
  const after = await b.stats();
  const ok = Math.max(1, out.ok);
  return {
    rate: out.rate, ok: out.ok, refused: out.refused, errors: out.errors,
    cpuPerConnectUs: (after.cpuUs - before.cpuUs) / ok, primaryCpuPerConnectUs: redis ? (cpuUs(b.pid) - p0) / ok : 0, redisCpuPerConnectUs: (redisCpu(redis) - r0) / ok,
  };
}

export async function benchCluster(t: Targets, opts: { runs: number; log: (msg: string) => void; n?: number; inflight?: number; revocationFirst: number }): Promise<ClusterResult> {
  const counts = workerCounts();
  const most = counts[counts.length - 1]!;
  const n = Math.min(opts.n ?? 5000, t.fx.connects.length);
  const inflight = opts.inflight ?? 400;
  const packets = t.fx.connects.slice(0, n);
  const warm = t.fx.connects.slice(n - 300, n);
  const kinds: ClusterKind[] = [
    { name: SINGLE, workers: null },
    ...counts.map((w) => ({ name: workersKind(w), workers: w })),
    ...(most > 1 ? [{ name: broadcastKind(most), workers: most, broadcast: true }] : []),
    ...(t.mosquitto ? [{ name: 'mosquitto', workers: null, mosquitto: true }] : []),
  ];
  const load = await startLoadProcs(loadProcCount());
  const runs: Record<string, ClusterConnectRun[]> = Object.fromEntries(kinds.map((k) => [k.name, []]));
  try {
    for (let r = 0; r < opts.runs; r++) {
      for (const k of kinds) {
        opts.log(`9. cluster: ${n} CONNECTs from ${load.size} processes → ${k.name} (run ${r + 1}/${opts.runs})`);
        const node = await startKind(k, t, `cluster-${r}-${k.name.replace(/\W+/g, '-')}`);
        try {
          runs[k.name]!.push(await measureConnects(load, node.b, node.redis, packets, warm, inflight));
        } finally {
          await node.close();
        }
      }
    }
  } finally {
    await load.close();
  }
  const results: Record<string, ClusterKindResult> = {};
  const ratioToSingle: Record<string, number> = {};
  const rates = (name: string) => runs[name]!.map((x) => x.rate);
  for (const [name, rs] of Object.entries(runs)) {
    const m = (f: (x: ClusterConnectRun) => number) => median(rs.map(f));
    results[name] = { runs: rs, rate: m((x) => x.rate), cpuPerConnectUs: m((x) => x.cpuPerConnectUs), primaryCpuPerConnectUs: m((x) => x.primaryCpuPerConnectUs), redisCpuPerConnectUs: m((x) => x.redisCpuPerConnectUs) };
    ratioToSingle[name] = pairedRatio(rates(name), rates(SINGLE));
  }
  const ratioToPrevious: Record<string, number> = {};
  for (const [i, w] of counts.entries()) if (i > 0) ratioToPrevious[workersKind(w)] = pairedRatio(rates(workersKind(w)), rates(workersKind(counts[i - 1]!)));

  // BENCH_WORKERS given: throughput and memory at every worker count, beside Mosquitto (a many-core host's table);
  // otherwise throughput at the largest count only.
  const perCount = process.env.BENCH_WORKERS !== undefined;
  const mosquittoKind: ClusterKind[] = perCount && t.mosquitto ? [{ name: 'mosquitto', workers: null, mosquitto: true }] : [];
  const measured: ClusterKind[] = [{ name: SINGLE, workers: null }, ...(perCount ? counts : [most]).map((w) => ({ name: workersKind(w), workers: w })), ...mosquittoKind];
  const throughput: ClusterThroughput[] = [];
  for (const mode of [{ qos: 0, sink: 'subscriber' }, { qos: 1, sink: 'subscriber' }] as ThroughputMode[]) {
    const res: Record<string, (Awaited<ReturnType<typeof oneRun>> & { redisCpuPerMsgUs: number })[]> = Object.fromEntries(measured.map((k) => [k.name, []]));
    for (let r = 0; r < opts.runs; r++) {
      for (const k of measured) {
        opts.log(`9. cluster: QoS ${mode.qos} throughput → 1 subscriber, ${k.name} (run ${r + 1}/${opts.runs})`);
        const node = await startKind(k, t, `cluster-tp-${mode.qos}-${r}-${k.name.replace(/\W+/g, '-')}`);
        try {
          const r0 = redisCpu(node.redis);
          const one = await oneRun(node.b, t, mode, 8, PER_PUBLISHER[`${mode.qos}-subscriber`]);
          res[k.name]!.push({ ...one, redisCpuPerMsgUs: (redisCpu(node.redis) - r0) / Math.max(1, one.delivered) });
        } finally {
          await node.close();
        }
      }
    }
    const sum = (name: string) => {
      const xs = res[name]!;
      return { rate: median(xs.map((x) => x.rate)), cpuPerMsgUs: median(xs.map((x) => x.cpuPerMsgUs)), redisCpuPerMsgUs: median(xs.map((x) => x.redisCpuPerMsgUs)), complete: xs.every((x) => x.delivered >= x.expected) };
    };
    for (const k of measured) {
      if (k.workers === null) continue;
      throughput.push({
        mode, workers: k.workers, single: sum(SINGLE), cluster: sum(k.name), ...(res.mosquitto && { mosquitto: sum('mosquitto') }),
        ratio: pairedRatio(res[k.name]!.map((x) => x.rate), res[SINGLE]!.map((x) => x.rate)),
      });
    }
  }

  const memory = perCount ? await clusterMemory(t, measured, opts) : null;

  opts.log(`9. cluster: revocation latency, 100 devices spread over ${most} workers`);
  let redis: RedisServer | null = null;
  const revocation = await benchRevocation(t, {
    runs: opts.runs, first: opts.revocationFirst,
    start: async () => {
      redis = await startRedisServer();
      const b = await startNodeProc({ db: t.fx.db, dir: t.fx.dir, workers: most, bus: redis.url, tag: 'cluster-revocation' });
      return { ...b, close: async () => { await b.close(); await redis?.close(); } };
    },
  }).catch(async (err: unknown) => { await (redis as RedisServer | null)?.close(); throw err; });

  return { cpus: availableParallelism(), loadProcs: loadProcCount(), n, inflight, workerCounts: counts, kinds: results, ratioToSingle, ratioToPrevious, throughput, memory, revocation: { ...revocation, workers: most } };
}
