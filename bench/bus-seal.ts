/**
 * 9b. What sealing the bus costs (issue 19): every message between the brokers
 * of a cluster sealed with the cluster key (AES-256-GCM), against the same
 * without sealing (`unsealed`, a switch set here in code), in the same run,
 * paired runs back to back:
 * - CPU µs per cross-worker message: two buses in this process on one
 *   redis-server, QoS 0 publishes from one to a subscriber on the other; the
 *   process's CPU over both ends (publish, Redis client, seal and open) per
 *   message delivered (Redis' own CPU apart);
 * - the seal and open alone (bus-auth.ts), in-process, per message of the
 *   same size: the part of the above that sealing adds, free of the noise of
 *   the Redis round trips;
 * - CONNECT/s of a broker on a bus (a child process, as a worker runs it) under
 *   the load processes' CONNECTs.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { createLogger } from '../broker/index.js';
import { BusSeal } from '../cluster/bus-auth.js';
import { Bus } from '../cluster/bus.js';
import { BusKeyring } from '../cluster/bus-keys.js';
import { openRegistry } from '../registry/index.js';
import { measureConnects } from './connect-rate.js';
import { startBrokerProc } from './lib/broker-proc.js';
import { startRedisServer } from './lib/redis-server.js';
import { pairedRatio } from './lib/stats.js';
import type { Targets } from './lib/targets.js';

export interface BusSealResult {
  readonly messages: number;
  readonly connects: number;
  /** µs of CPU per cross-worker message, each run. */
  readonly msgCpuUs: { sealed: number[]; unsealed: number[] };
  readonly connectRate: { sealed: number[]; unsealed: number[] };
  /** µs of CPU for one seal and one open of a message of this size, each run. */
  readonly sealOpenUs: number[];
  /** Medians of the paired ratios sealed/unsealed. */
  readonly msgCpuRatio: number;
  readonly connectRateRatio: number;
}

const PAYLOAD = Buffer.alloc(64, 'x');

/** One run: `n` QoS 0 messages from bus A to a subscriber on bus B; this process's CPU µs per message. */
async function crossWorker(url: string, keys: BusKeyring, unsealed: boolean, n: number): Promise<number> {
  const log = createLogger('silent');
  const opts = { broadcastTakeover: false, maxQueuedMessages: 1000, keys, ...(unsealed && { unsealed: true as const }) };
  const [a, b] = [await Bus.connect({ url, ca: null }, 'bench-a', log, opts), await Bus.connect({ url, ca: null }, 'bench-b', log, opts)];
  try {
    let got = 0;
    let all!: () => void;
    const done = new Promise<void>((r) => { all = r; });
    await new Promise<void>((r) => b.mq.on('bench/seal/#', (_p, cb) => { if (++got === n) all(); cb(); }, r));
    const send = (count: number) => {
      for (let i = 0; i < count; i++) a.mq.emit({ cmd: 'publish', topic: 'bench/seal/x', payload: PAYLOAD, qos: 0, retain: false, dup: false, brokerId: 'bench-a', brokerCounter: i });
    };
    send(1000); // warm (JIT, connections)
    n += 1000;
    const start = process.cpuUsage();
    send(n - 1000);
    await Promise.race([done, new Promise((_r, reject) => setTimeout(() => reject(new Error(`bus-seal: ${got}/${n} messages after 60 s`)), 60_000).unref())]);
    const cpu = process.cpuUsage(start);
    return (cpu.user + cpu.system) / (n - 1000);
  } finally {
    await a.close();
    await b.close();
  }
}

/** One seal and one open (as a message crosses from one worker to another), µs each pair, over `n` pairs. */
function sealOpen(n: number): number {
  const kid = randomBytes(4);
  const keys = { sealing: { kid, key: createSecretKey(randomBytes(32)) }, opening: new Map<number, KeyObject>(), stored: new Map<number, KeyObject>() };
  keys.opening.set(kid.readUInt32BE(0), keys.sealing.key);
  const fail = () => { throw new Error('bus-seal: a message did not open'); };
  const [from, to] = [new BusSeal(() => keys, fail, () => {}), new BusSeal(() => keys, fail, () => {})];
  // About the size mqemitter-redis frames a 64-byte QoS 0 publish into.
  const framed = randomBytes(PAYLOAD.length + 60);
  for (let i = 0; i < 10_000; i++) to.open('bench/seal/x', from.seal('bench/seal/x', framed), '');
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) to.open('bench/seal/x', from.seal('bench/seal/x', framed), '');
  const cpu = process.cpuUsage(start);
  return (cpu.user + cpu.system) / n;
}

export async function benchBusSeal(t: Targets, opts: { runs: number; log: (msg: string) => void; messages?: number; connects?: number }): Promise<BusSealResult> {
  const messages = opts.messages ?? 50_000;
  const connects = Math.min(opts.connects ?? 5000, t.fx.connects.length);
  const reg = await openRegistry(t.fx.db);
  const keys = await BusKeyring.load(reg).finally(() => reg.close());
  const msgCpuUs = { sealed: [] as number[], unsealed: [] as number[] };
  const connectRate = { sealed: [] as number[], unsealed: [] as number[] };
  const sealOpenUs: number[] = [];
  try {
    for (let r = 0; r < opts.runs; r++) {
      // The order alternates between runs, so that neither side always runs on a fresher process.
      for (const unsealed of r % 2 ? [true, false] : [false, true]) {
        const which = unsealed ? 'unsealed' : 'sealed';
        opts.log(`9b. bus seal: ${messages} cross-worker messages, ${which} (run ${r + 1}/${opts.runs})`);
        // A fresh redis-server per measurement: no run inherits another's sessions or claims.
        const redis = await startRedisServer();
        try {
          msgCpuUs[which].push(await crossWorker(redis.url, keys, unsealed, messages));
          opts.log(`9b. bus seal: ${connects} CONNECTs to a broker on the bus, ${which} (run ${r + 1}/${opts.runs})`);
          const b = await startBrokerProc('credbroker-bus', { db: t.fx.db, bus: { url: redis.url, unsealed }, config: { logLevel: 'warn', deviceConnectBurst: 1000 } });
          try {
            const run = await measureConnects(b, t.fx.connects.slice(0, connects), t.fx.connects.slice(connects - 300, connects), 400);
            connectRate[which].push(run.rate);
          } finally {
            await b.close();
          }
        } finally {
          await redis.close();
        }
      }
      // Last: the garbage its ciphers leave is not collected during a measured cross-worker run.
      sealOpenUs.push(sealOpen(messages));
    }
  } finally {
    keys.close();
  }
  return {
    messages, connects, msgCpuUs, connectRate, sealOpenUs,
    msgCpuRatio: pairedRatio(msgCpuUs.sealed, msgCpuUs.unsealed),
    connectRateRatio: pairedRatio(connectRate.sealed, connectRate.unsealed),
  };
}
