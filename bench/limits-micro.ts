/**
 * 8c. The limits' own per-operation cost, in a hot loop in-process: what the
 * packet guard adds to parsing one PUBLISH (remaining-length check, UTF-8
 * check of the topic) and to setting up one connection, and what one outbound
 * queue check costs per delivery (the client's socket buffer empty, and behind).
 * The end-to-end pairs in limits-cost.ts carry the run-to-run noise of shared
 * cores (±10 % and more); these figures, set against the broker's CPU per
 * message and per CONNECT, say what the limits can cost at most. Timed in this
 * process's CPU time, not wall time: other processes on the host do not count.
 */
import type { AedesPublishPacket, Client } from 'aedes';
import mqttPacket from 'mqtt-packet';
import { OutboundQueues } from '../broker/outbound-queue.js';
import { guardClient, type GuardHooks } from '../broker/packet-guard.js';
import { median } from './lib/stats.js';

/** This process's CPU time (user + system), µs. */
const cpuUs = () => { const c = process.cpuUsage(); return c.user + c.system; };

export interface LimitsMicroResult {
  /** µs added per PUBLISH parsed (64-byte payload, 30-byte topic). */
  readonly parseUs: number;
  /** µs added per connection: installing the guard on its parser. */
  readonly connectUs: number;
  /** µs per delivery for the outbound queue check: socket buffer empty / behind. */
  readonly admitIdleUs: number;
  readonly admitBehindUs: number;
}

const LIMITS = { maxPacketBytes: 256 * 1024, connectPacketBytes: 8192 };
const HOOKS: GuardHooks = { authenticated: () => true, onViolation: () => {}, onBroken: () => {} };
const BLOCKS = 9;

/** Median over alternating blocks of (b − a): both see the same load. */
function pairedDelta(a: () => number, b: () => number): number {
  a(); b(); // warm-up (JIT)
  const d: number[] = [];
  for (let i = 0; i < BLOCKS; i++) d.push(b() - a());
  return Math.max(0, median(d));
}

/** 200 connections' parsers, each fed `rounds` chunks of `packets` PUBLISHes (a socket read holds a few). */
function parsePerPacketUs(guarded: boolean, chunk: Buffer, packets: number, rounds: number): number {
  let seen = 0;
  const parsers = Array.from({ length: 200 }, () => {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    if (guarded) guardClient({ _parser: parser } as unknown as Client, LIMITS, HOOKS);
    parser.on('packet', () => { seen++; });
    return parser;
  });
  const t0 = cpuUs();
  for (let r = 0; r < rounds; r++) for (const p of parsers) p.parse(chunk);
  const total = packets * rounds * parsers.length;
  const us = (cpuUs() - t0) / total;
  if (seen !== total) throw new Error(`parsed ${seen} of ${total} packets`);
  return us;
}

function connectSetupUs(guarded: boolean, connect: Buffer, n: number): number {
  const t0 = cpuUs();
  for (let i = 0; i < n; i++) {
    const parser = mqttPacket.parser();
    if (guarded) guardClient({ _parser: parser } as unknown as Client, LIMITS, HOOKS);
    parser.parse(connect);
  }
  return (cpuUs() - t0) / n;
}

function admitUs(behind: boolean, n: number): number {
  const q = new OutboundQueues({ maxQueuedMessages: 1000, maxQueuedBytes: 4 << 20, queueStallMs: 10_000, hardQueuedBytes: 8 << 20 });
  const conn = { writableLength: 0 };
  const client = { conn } as unknown as Client;
  const packet = { cmd: 'publish', topic: 'devices/dev-000123/telemetry', payload: Buffer.alloc(64), qos: 0, retain: false, dup: false } as unknown as AedesPublishPacket;
  let forwarded = 0;
  const t0 = cpuUs();
  for (let i = 0; i < n; i++) {
    // Behind: the buffer holds ~100 messages and the socket takes one per delivery.
    if (behind) conn.writableLength = 9_600 + (i % 7);
    if (q.admit(client, packet) === 'forward') forwarded++;
  }
  const us = (cpuUs() - t0) / n;
  if (forwarded !== n) throw new Error(`admit refused ${n - forwarded} deliveries under the bounds`);
  return us;
}

export function benchLimitsMicro(): LimitsMicroResult {
  const publish = mqttPacket.generate({ cmd: 'publish', topic: 'devices/dev-000123/telemetry', payload: Buffer.alloc(64, 0x61), qos: 0, retain: false, dup: false });
  const packets = 20;
  const chunk = Buffer.concat(Array.from({ length: packets }, () => publish));
  const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'dev-000123', username: 'dev-000123', password: Buffer.alloc(600, 0x41) });
  return {
    parseUs: pairedDelta(() => parsePerPacketUs(false, chunk, packets, 100), () => parsePerPacketUs(true, chunk, packets, 100)),
    connectUs: pairedDelta(() => connectSetupUs(false, connect, 100_000), () => connectSetupUs(true, connect, 100_000)),
    admitIdleUs: median(Array.from({ length: BLOCKS }, () => admitUs(false, 1_000_000))),
    admitBehindUs: median(Array.from({ length: BLOCKS }, () => admitUs(true, 1_000_000))),
  };
}
