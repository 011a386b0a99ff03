/**
 * 4. Publish throughput through the ACL checks: P publishers (each a sensor
 * device publishing to its own `devices/{id}/telemetry`) → one subscriber (an
 * `observer` device subscribed to `devices/#`), or to nowhere (no subscriber).
 * QoS 0 is paced by PINGREQ/PINGRESP after every window; QoS 1 keeps a window of
 * unacknowledged PUBLISHes per publisher. With a subscriber the clock stops at
 * the last message it receives; without, at the last PINGRESP / PUBACK.
 */
import type { BrokerHandle, BrokerKind } from './lib/broker-proc.js';
import { credsOf } from './lib/fixture.js';
import { PINGREQ, PKT, RawClient, connectPacket, publishTemplate } from './lib/raw-client.js';
import { median, now, pairedRatio, sleep } from './lib/stats.js';
import { interleaved, startTarget, type Targets } from './lib/targets.js';

export type Sink = 'subscriber' | 'nowhere';
export interface ThroughputMode { readonly qos: 0 | 1; readonly sink: Sink }
export interface ThroughputRun { readonly rate: number; readonly delivered: number; readonly expected: number; readonly cpuPerMsgUs: number }
export interface ThroughputResult {
  readonly mode: ThroughputMode;
  readonly publishers: number;
  readonly perPublisher: number;
  readonly kinds: Partial<Record<BrokerKind, { runs: ThroughputRun[]; rate: number; cpuPerMsgUs: number; complete: boolean }>>;
  readonly ratio: number;
  readonly mosquittoRatio: number | null;
  /** credbroker / aedes broker CPU per message (median of paired runs): steadier than msgs/s on shared cores. */
  readonly cpuRatio: number;
  /** Broker CPU per message credbroker spends over plain aedes, µs (median of the paired differences). */
  readonly cpuOverUs: number;
}

const PAYLOAD = Buffer.alloc(64, 0x61);
/**
 * Messages per publisher, per mode: enough for a measured batch of 1.5-2 s here.
 * Sub-second batches swung the ratio by ±15% from run to run on shared cores.
 */
export const PER_PUBLISHER: Record<`${ThroughputMode['qos']}-${Sink}`, number> = {
  '0-subscriber': 12_000, '0-nowhere': 30_000, '1-subscriber': 8_000, '1-nowhere': 16_000,
};

async function pumpQos0(c: RawClient, frame: Buffer, total: number, window: number): Promise<void> {
  const batch = Buffer.concat([...Array.from({ length: window }, () => frame), PINGREQ]);
  for (let sent = 0; sent < total; sent += window) {
    const pong = c.next(PKT.PINGRESP);
    c.write(batch);
    await pong;
  }
}

/** How long a publisher's whole QoS 1 batch may take before the run fails. */
const PUMP_MS = 120_000;

function pumpQos1(c: RawClient, tpl: { frame: Buffer; idOffset: number }, total: number, window: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`QoS 1: ${total} PUBACKs not in within ${PUMP_MS} ms`)), PUMP_MS);
    void c.closed.then(() => { clearTimeout(timer); reject(new Error('QoS 1: the connection closed before every PUBACK')); });
    let seq = 0;
    let acked = 0;
    let owed = 0;
    const frames = (k: number) => {
      const len = tpl.frame.length;
      const out = Buffer.allocUnsafe(len * k);
      for (let i = 0; i < k; i++) {
        tpl.frame.copy(out, i * len);
        out.writeUInt16BE((seq++ % 65535) + 1, i * len + tpl.idOffset);
      }
      return out;
    };
    c.onFrame = (type) => {
      if (type !== PKT.PUBACK) return;
      acked++;
      if (seq + owed < total) owed++;
    };
    c.socket.on('data', () => {
      if (owed) { const k = owed; owed = 0; c.write(frames(k)); }
      if (acked >= total) { clearTimeout(timer); resolve(); }
    });
    c.write(frames(Math.min(window, total)));
  });
}

/** Counts PUBLISHes; at QoS 1 acknowledges them, one write per read. */
function counter(sub: RawClient): { count: () => number; reset: () => void; reached: (n: number, timeoutMs: number) => Promise<number> } {
  let count = 0;
  let acks: number[] = [];
  let waiter: { n: number; resolve: (t: number) => void } | null = null;
  sub.onFrame = (type, first, b, s) => {
    if (type !== PKT.PUBLISH) return;
    count++;
    if ((first >> 1) & 3) {
      const topicLen = b.readUInt16BE(s);
      acks.push(b.readUInt16BE(s + 2 + topicLen));
    }
  };
  sub.socket.on('data', () => {
    if (acks.length) {
      const out = Buffer.allocUnsafe(acks.length * 4);
      acks.forEach((id, i) => { out[i * 4] = 0x40; out[i * 4 + 1] = 2; out.writeUInt16BE(id, i * 4 + 2); });
      acks = [];
      sub.write(out);
    }
    if (waiter && count >= waiter.n) { const w = waiter; waiter = null; w.resolve(now()); }
  });
  return {
    count: () => count,
    reset: () => { count = 0; },
    reached: (n, timeoutMs) => new Promise((resolve) => {
      if (count >= n) return resolve(now());
      waiter = { n, resolve };
      setTimeout(() => { if (waiter) { waiter = null; resolve(now()); } }, timeoutMs).unref();
    }),
  };
}

/** Where the subscriber is when it is not on the publishers' broker, and whose CPU counts then (µs so far). */
export interface Across { readonly sub: BrokerHandle; cpuUs(): Promise<number> }

/** One measured run (after a warm-up) on a started broker (the subscriber on `across.sub` when given). */
export async function oneRun(b: BrokerHandle, t: Targets, mode: ThroughputMode, publishers: number, perPublisher: number, across?: Across): Promise<ThroughputRun> {
  const devs = t.fx.devices.slice(0, publishers);
  const pubs = await Promise.all(devs.map((d) => RawClient.connect(b.port, connectPacket(credsOf(d)))));
  let sub: RawClient | null = null;
  let cnt: ReturnType<typeof counter> | null = null;
  try {
    if (mode.sink === 'subscriber') {
      sub = await RawClient.connect((across?.sub ?? b).port, connectPacket(credsOf(t.fx.observer)));
      const granted = await sub.subscribe('devices/#', mode.qos);
      if (granted === 0x80) throw new Error(`${b.kind} refused the observer's devices/# subscription`);
      cnt = counter(sub);
    }
    const tpls = devs.map((d) => publishTemplate(`devices/${d.deviceId}/telemetry`, PAYLOAD, mode.qos));
    const pump = (m: number) => Promise.all(pubs.map((p, i) => (mode.qos === 0 ? pumpQos0(p, tpls[i]!.frame, m, 100) : pumpQos1(p, tpls[i]!, m, 64))));
    // Warm-up (JIT, buffers), then the measured batch.
    const warm = Math.max(100, Math.round(perPublisher / 5 / 100) * 100);
    await pump(warm);
    if (cnt) { await cnt.reached(warm * publishers, 5000); await sleep(50); cnt.reset(); }
    const expected = perPublisher * publishers;
    const cpu = across ? () => across.cpuUs() : async () => (await b.stats()).cpuUs;
    const before = await cpu();
    const t0 = now();
    await pump(perPublisher);
    const t1 = cnt ? await cnt.reached(expected, 20_000) : now();
    const after = await cpu();
    const delivered = cnt ? cnt.count() : expected;
    return { rate: (delivered * 1000) / (t1 - t0), delivered, expected, cpuPerMsgUs: (after - before) / Math.max(1, delivered) };
  } finally {
    await Promise.all([...pubs, ...(sub ? [sub] : [])].map((c) => c.close()));
  }
}

export async function benchThroughput(t: Targets, mode: ThroughputMode, opts: { publishers?: number; perPublisher?: number; runs?: number } = {}): Promise<ThroughputResult> {
  const publishers = opts.publishers ?? 8;
  const perPublisher = opts.perPublisher ?? PER_PUBLISHER[`${mode.qos}-${mode.sink}`];
  const results = await interleaved(t, opts.runs ?? 3, async (kind, run) => {
    const b = await startTarget(kind, t, `tp-${mode.qos}-${mode.sink}-${run}`);
    try {
      return await oneRun(b, t, mode, publishers, perPublisher);
    } finally {
      await b.close();
    }
  });
  const kinds: ThroughputResult['kinds'] = {};
  for (const [k, runs] of Object.entries(results) as [BrokerKind, ThroughputRun[]][]) {
    if (runs.length) kinds[k] = { runs, rate: median(runs.map((r) => r.rate)), cpuPerMsgUs: median(runs.map((r) => r.cpuPerMsgUs)), complete: runs.every((r) => r.delivered >= r.expected) };
  }
  return {
    mode, publishers, perPublisher, kinds,
    ratio: pairedRatio(results.credbroker.map((r) => r.rate), results.aedes.map((r) => r.rate)),
    mosquittoRatio: results.mosquitto.length ? pairedRatio(results.mosquitto.map((r) => r.rate), results.aedes.map((r) => r.rate)) : null,
    cpuRatio: pairedRatio(results.credbroker.map((r) => r.cpuPerMsgUs), results.aedes.map((r) => r.cpuPerMsgUs)),
    cpuOverUs: median(results.credbroker.map((r, i) => r.cpuPerMsgUs - results.aedes[i]!.cpuPerMsgUs)),
  };
}
