/**
 * 9b. What sealing the bus costs (issue 19): every message between the brokers
 * of a cluster sealed with the cluster key (AES-256-GCM), against the same
 * without sealing (`unsealed`, a switch set here in code), in the same run,
 * paired runs back to back, the order alternating:
 * - CPU per cross-worker message, end to end: two brokers in child processes
 *   (as workers run them) on one redis-server, 8 MQTT publishers on the first
 *   and one subscriber (`devices/#`) on the second, QoS 0 and QoS 1; the CPU of
 *   both broker processes and Redis (from /proc) per message delivered;
 * - CONNECT/s of the first broker, on that bus, under the load's CONNECTs;
 * - the seal and open alone (bus-auth.ts), in-process, per message of the
 *   size mqemitter-redis frames: the part of the above that sealing adds.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { BusSeal } from '../cluster/bus-auth.js';
import { measureConnects } from './connect-rate.js';
import { startBrokerProc, type BrokerHandle } from './lib/broker-proc.js';
import { cpuUs } from './lib/proc-stat.js';
import { startRedisServer, type RedisServer } from './lib/redis-server.js';
import { pairedRatio } from './lib/stats.js';
import type { Targets } from './lib/targets.js';
import { oneRun, PER_PUBLISHER } from './throughput.js';

type Sides = { sealed: number[]; unsealed: number[] };

export interface BusSealResult {
  /** Messages per publisher (8 publishers) and CONNECTs, per run. */
  readonly perPublisher: { qos0: number; qos1: number };
  readonly connects: number;
  /** µs of CPU (both brokers + Redis) per cross-worker message delivered, each run. */
  readonly msgCpuUs: { qos0: Sides; qos1: Sides };
  /** Whether every message of every run arrived. */
  readonly complete: boolean;
  readonly connectRate: Sides;
  /** µs of CPU for one seal and one open of a message of this size, each run. */
  readonly sealOpenUs: number[];
  /** Medians of the paired ratios sealed/unsealed. */
  readonly msgCpuRatio: { qos0: number; qos1: number };
  readonly connectRateRatio: number;
}

const PUBLISHERS = 8;
/** The size mqemitter-redis frames a 64-byte QoS 0 publish on `devices/{id}/telemetry` into, about. */
const FRAMED = 124;

/** Two brokers on one fresh redis-server, sealed or not. */
async function startPair(t: Targets, unsealed: boolean): Promise<{ a: BrokerHandle; b: BrokerHandle; redis: RedisServer; close(): Promise<void> }> {
  const redis = await startRedisServer();
  const opts = { db: t.fx.db, bus: { url: redis.url, unsealed }, config: { logLevel: 'warn', deviceConnectBurst: 1000 } };
  const started: BrokerHandle[] = [];
  const close = async () => { await Promise.all(started.map((x) => x.close())); await redis.close(); };
  try {
    for (let i = 0; i < 2; i++) started.push(await startBrokerProc('credbroker-bus', { ...opts, cpuProfDir: t.cpuProfDir }));
  } catch (err) {
    await close();
    throw err;
  }
  return { a: started[0]!, b: started[1]!, redis, close };
}

/** One seal and one open (as a message crosses from one worker to another), µs each pair, over `n` pairs. */
function sealOpen(n: number): number {
  const kid = randomBytes(4);
  const keys = { sealing: { kid, key: createSecretKey(randomBytes(32)) }, opening: new Map<number, KeyObject>(), stored: new Map<number, KeyObject>() };
  keys.opening.set(kid.readUInt32BE(0), keys.sealing.key);
  const fail = () => { throw new Error('bus-seal: a message did not open'); };
  const [from, to] = [new BusSeal(() => keys, fail, () => {}), new BusSeal(() => keys, fail, () => {})];
  const framed = randomBytes(FRAMED);
  for (let i = 0; i < 10_000; i++) to.open('bench/seal/x', from.seal('bench/seal/x', framed), '');
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) to.open('bench/seal/x', from.seal('bench/seal/x', framed), '');
  const cpu = process.cpuUsage(start);
  return (cpu.user + cpu.system) / n;
}

export async function benchBusSeal(t: Targets, opts: { runs: number; log: (msg: string) => void; scale?: number; connects?: number }): Promise<BusSealResult> {
  const scale = opts.scale ?? 1;
  const perPublisher = { qos0: Math.round(PER_PUBLISHER['0-subscriber'] * scale), qos1: Math.round(PER_PUBLISHER['1-subscriber'] * scale) };
  const connects = Math.min(opts.connects ?? 5000, t.fx.connects.length);
  const msgCpuUs = { qos0: { sealed: [], unsealed: [] } as Sides, qos1: { sealed: [], unsealed: [] } as Sides };
  const connectRate: Sides = { sealed: [], unsealed: [] };
  const sealOpenUs: number[] = [];
  let complete = true;
  for (let r = 0; r < opts.runs; r++) {
    // The order alternates between runs, so that neither side always runs on a fresher host.
    for (const unsealed of r % 2 ? [true, false] : [false, true]) {
      const which = unsealed ? 'unsealed' : 'sealed';
      // A fresh redis-server and brokers per measurement: no run inherits another's sessions or claims.
      const pair = await startPair(t, unsealed);
      try {
        const across = { sub: pair.b, cpuUs: async () => [pair.a.pid, pair.b.pid, pair.redis.pid()!].reduce((n, pid) => n + cpuUs(pid), 0) };
        for (const qos of [0, 1] as const) {
          const n = qos ? perPublisher.qos1 : perPublisher.qos0;
          opts.log(`9b. bus seal: QoS ${qos}, ${PUBLISHERS} × ${n} messages broker A → subscriber on broker B, ${which} (run ${r + 1}/${opts.runs})`);
          const run = await oneRun(pair.a, t, { qos, sink: 'subscriber' }, PUBLISHERS, n, across);
          complete &&= run.delivered >= run.expected;
          msgCpuUs[`qos${qos}`][which].push(run.cpuPerMsgUs);
        }
        opts.log(`9b. bus seal: ${connects} CONNECTs to broker A on the bus, ${which} (run ${r + 1}/${opts.runs})`);
        const run = await measureConnects(pair.a, t.fx.connects.slice(0, connects), t.fx.connects.slice(connects - 300, connects), 400);
        connectRate[which].push(run.rate);
      } finally {
        await pair.close();
      }
    }
    sealOpenUs.push(sealOpen(PUBLISHERS * perPublisher.qos0));
  }
  const ratio = (s: Sides) => pairedRatio(s.sealed, s.unsealed);
  return {
    perPublisher, connects, msgCpuUs, complete, connectRate, sealOpenUs,
    msgCpuRatio: { qos0: ratio(msgCpuUs.qos0), qos1: ratio(msgCpuUs.qos1) },
    connectRateRatio: ratio(connectRate),
  };
}
