import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { MQEmitter } from 'mqemitter';
import type { BusInterest } from './bus-interest.js';
import { decodeFrames, encodeFrame, encodeFrames, type BusPacket } from './bus-frame.js';
import { endConnection } from './redis-connection.js';
import { atMostCommandTimeout } from './redis-options.js';

// CommonJS; its types use `export =` with a constructor-shaped interface.
const mqemitter = createRequire(import.meta.url)('mqemitter') as (opts: object) => MQEmitter;

type Listener = (packet: BusPacket, done: () => void) => void;

/** Consecutive publishes to one channel, waiting for the end of the event-loop turn to go out as one bus message. */
interface Run { readonly channel: string; readonly frames: Buffer[]; readonly done: Array<() => void>; bytes: number }

/** A run is cut at this size (frames' bytes), so that one bus message stays small for Redis and its readers. */
const MAX_RUN_BYTES = 64 * 1024;

/** How a frame goes out on the bus and comes back in (bus.ts: sealed with the cluster key, or the bench's unsealed baseline). */
export interface BusWire {
  wrap(channel: string, frame: Buffer): Buffer;
  /** The frame, or null: dropped (this broker's own message, or one that does not open). */
  unwrap(channel: Buffer, message: Buffer, route: string): Buffer | null;
}

export interface BusEmitterHooks {
  /** aedes' topics that stay off the bus (its per-CONNECT announcements, when ownership replaces them). */
  readonly quiet: RegExp | null;
  /** Publishes that reached this broker's subscribers only (Redis unreachable). */
  localOnly(count: number): void;
  /** A message that opened but is no frame of this version. */
  malformed(): void;
  /** The emitter is closing: its connections end on purpose. */
  closing(): void;
}

/**
 * aedes' `mq` on a Redis bus. A publish reaches this broker's own subscribers
 * directly (an MQEmitter), and goes to Redis, as a compact frame (bus-frame.ts)
 * through the wire, for the other brokers only: the copy Redis sends back to this
 * broker is dropped unopened. A publish whose topic no other broker subscribes to
 * (bus-interest.ts) does not go to Redis at all.
 *
 * The publishes of one event-loop turn go out together at its end: consecutive
 * ones to the same channel as one bus message (one seal, one PUBLISH, one read
 * on each receiving broker), and all of them in one write (ioredis'
 * auto-pipelining). Their order is kept: a run ends where another channel's
 * publish comes between. A device that sends a burst (a gateway, a backlog after
 * an outage) costs the bus once per burst rather than once per message.
 *
 * A subscription here subscribes this broker's Redis
 * connection to the topic (a pattern for a filter with wildcards), once per
 * channel however many listeners share it.
 *
 * While Redis is unreachable a publish still reaches this broker's subscribers
 * (counted: the other brokers miss it), and a new subscription works here at once,
 * its Redis side sent on the reconnect.
 */
export class BusEmitter {
  private readonly local = mqemitter({ concurrency: 0, matchEmptyLevels: true });
  /** Listeners per Redis subscription ("s:" channel or "p:" pattern). */
  private readonly subscriptions = new Map<string, number>();
  /** The publishes of this event-loop turn, in order, not yet sent to Redis. */
  private runs: Run[] = [];

  /** Publishes no other broker wanted, delivered here only (never sent to Redis): a count the metrics read. */
  keptLocal = 0;

  constructor(
    private readonly pub: Redis, private readonly sub: Redis, private readonly wire: BusWire, private readonly hooks: BusEmitterHooks,
    private readonly interest: BusInterest,
  ) {
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.take(channel, message, ''));
    sub.on('pmessageBuffer', (pattern: Buffer, channel: Buffer, message: Buffer) => this.take(channel, message, pattern.toString('latin1')));
  }

  /** `done` (the SUBACK) once Redis has the subscription and the other brokers send it what matches (bus-interest.ts). */
  on(topic: string, fn: Listener, done?: () => void): this {
    this.local.on(topic, fn as never);
    const { key, name, pattern } = redisSubscription(topic);
    const n = this.subscriptions.get(key) ?? 0;
    this.subscriptions.set(key, n + 1);
    const waits = [this.interest.add(topic)];
    if (n === 0) {
      const sent = pattern ? this.sub.psubscribe(name) : this.sub.subscribe(name);
      // A failed subscribe is a lost connection, logged as such; ioredis subscribes again when it is back.
      sent.catch(() => {});
      // Waited for within COMMAND_TIMEOUT_MS, unless Redis is away.
      if (this.sub.status === 'ready') waits.push(atMostCommandTimeout(sent));
    }
    if (done) void Promise.all(waits).then(() => done());
    return this;
  }

  removeListener(topic: string, fn: Listener, done?: () => void): void {
    this.local.removeListener(topic, fn as never);
    this.interest.remove(topic);
    const { key, name, pattern } = redisSubscription(topic);
    const n = (this.subscriptions.get(key) ?? 0) - 1;
    if (n > 0) this.subscriptions.set(key, n);
    else {
      this.subscriptions.delete(key);
      (pattern ? this.sub.punsubscribe(name) : this.sub.unsubscribe(name)).catch(() => {});
    }
    if (done) setImmediate(done);
  }

  /** `done` once the local subscribers have it and Redis has taken it (or failed to: the other brokers miss it, counted). */
  emit(packet: BusPacket, done: (err?: Error) => void = () => {}): void {
    if (this.hooks.quiet?.test(packet.topic)) return done();
    let pending = 2;
    const one = () => { if (--pending === 0) done(); };
    this.local.emit(packet as never, one);
    if (this.pub.status !== 'ready') {
      this.hooks.localOnly(1);
      return one();
    }
    if (!this.interest.wants(packet.topic)) {
      this.keptLocal++;
      return one();
    }
    const frame = encodeFrame(packet);
    let run = this.runs[this.runs.length - 1];
    if (!run || run.channel !== packet.topic || run.bytes + frame.length > MAX_RUN_BYTES) {
      if (this.runs.length === 0) setImmediate(this.send);
      this.runs.push((run = { channel: packet.topic, frames: [], done: [], bytes: 0 }));
    }
    run.frames.push(frame);
    run.done.push(one);
    run.bytes += frame.length;
  }

  /** This turn's runs to Redis, one PUBLISH each, in order. */
  private readonly send = (): void => {
    const runs = this.runs;
    this.runs = [];
    for (const run of runs) {
      const settle = () => { for (const d of run.done) d(); };
      this.pub.publish(run.channel, this.wire.wrap(run.channel, encodeFrames(run.frames))).then(settle, () => {
        this.hooks.localOnly(run.frames.length);
        settle();
      });
    }
  };

  /**
   * aedes closes its `mq` as it stops: the connections end then, on purpose, and
   * never wait for a Redis that is away.
   */
  close(done: () => void): void {
    this.send(); // what this turn published still goes out, before the QUIT
    this.hooks.closing();
    this.interest.close();
    void Promise.all([endConnection(this.sub), endConnection(this.pub)]).then(() => this.local.close(done));
  }

  private take(channel: Buffer, message: Buffer, route: string): void {
    const frame = this.wire.unwrap(channel, message, route);
    if (!frame) return;
    let packets: BusPacket[];
    try {
      packets = decodeFrames(frame);
    } catch {
      return this.hooks.malformed();
    }
    for (const packet of packets) this.local.emit(packet as never);
  }
}

/** Redis' glob characters, escaped where a topic level is taken literally. */
const GLOB = /[\\*?[\]]/g;

/**
 * The Redis subscription that carries an MQTT topic filter: the topic itself
 * (SUBSCRIBE) without wildcards; else a glob pattern (PSUBSCRIBE) where `+` and a
 * trailing `#` (with the level before it: `a/#` matches `a` too) become `*`. The
 * pattern may take more than the filter (`*` crosses levels); the local matcher
 * keeps only what the filter matches.
 */
export function redisSubscription(topic: string): { key: string; name: string; pattern: boolean } {
  if (!topic.includes('+') && !topic.includes('#')) return { key: `s:${topic}`, name: topic, pattern: false };
  const levels = topic.split('/');
  const some = levels[levels.length - 1] === '#';
  const head = (some ? levels.slice(0, -1) : levels).map((l) => (l === '+' ? '*' : l.replace(GLOB, '\\$&'))).join('/');
  const name = some ? `${head}*` : head;
  return { key: `p:${name}`, name, pattern: true };
}
