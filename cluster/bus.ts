import { Counter, Gauge } from 'prom-client';
import { Redis, type RedisOptions } from 'ioredis';
import type { Client } from 'aedes';
import type { Logger, RunningBroker, SharedState } from '../broker/index.js';
import { redactUrl } from '../util/redact-url.js';
import { BusSeal, type RejectReason } from './bus-auth.js';
import { BusEmitter } from './bus-emitter.js';
import { BusInterest } from './bus-interest.js';
import { sealedWire, unsealedWire } from './bus-wire.js';
import type { BusKeyring } from './bus-keys.js';
import { busPersistence, sessionKeys, type Degraded } from './bus-persistence.js';
import { announcement, claimKey, Ownership, type TakeoverEvent } from './ownership.js';
import { endConnection } from './redis-connection.js';
import { COMMAND_TIMEOUT_MS, redisOptions, type RedisTarget } from './redis-options.js';

export interface BusOptions {
  /** aedes' own broadcast of every CONNECT instead of ownership (bench only). */
  readonly broadcastTakeover: boolean;
  /** The bound on a disconnected persistent session's stored queue (broker config `maxQueuedMessages`). */
  readonly maxQueuedMessages: number;
  /** The cluster key every message on the bus is sealed with (bus-auth.ts). */
  readonly keys: BusKeyring;
  /** Messages go out and are taken in unsealed: set in code by the bench's baseline only, never from configuration. */
  readonly unsealed?: true;
}

/** How often, at most, an unreachable Redis is logged again while it stays down. */
const DOWN_LOG_MS = 30_000;
/** Redis' replies to a wrong or missing user or password. */
const AUTH_REFUSED = /\b(WRONGPASS|NOAUTH|NOPERM)\b/;
/** How often the bus checks that Redis answers: a Redis that hangs keeps its connections open, so only a reply tells. */
const PROBE_MS = 1_000;
/** How often, at most, messages dropped from the bus are logged (with the counts since the last line). */
const REJECT_LOG_MS = 30_000;

/**
 * The bus a cluster's brokers share, on one Redis: Redis pub/sub carries the
 * publishes (`mq`, bus-emitter.ts), aedes-persistence-redis keeps sessions and retained messages
 * (`persistence`), and client-id ownership (ownership.ts) replaces aedes'
 * per-CONNECT broadcast.
 *
 * Faults, by design:
 * - **Redis missing at start**: `connect` waits and retries (backoff up to 2 s),
 *   logging while it waits; the node's `/readyz` says not ready until then. It
 *   never gives up: an orchestrator that starts Redis after the broker works.
 * - **A Redis error never ends the process**: every connection has an error handler.
 * - **Redis outage** (connections lost, or no reply within COMMAND_TIMEOUT_MS:
 *   every command has that deadline, and a PING probe tells a hung Redis): the
 *   brokers stay up; `ready()` is false (so is `/readyz`);
 *   a publish reaches the subscribers on this broker only; writes degrade (see
 *   bus-persistence.ts); CONNECTs of clean sessions still succeed, persistent
 *   ones are refused until Redis is back. The connections reconnect by
 *   themselves and resubscribe, and `ready()` turns true again.
 */
export class Bus {
  readonly mq: BusEmitter;
  readonly persistence: unknown;
  private readonly conns: { sub: Redis; pub: Redis; store: Redis };
  private readonly ownership: Ownership | null;
  private readonly gauge: Gauge;
  private readonly degraded: Counter<'what'>;
  private readonly takeovers: Counter<'event'>;
  private readonly rejected: Counter<'reason'>;
  private readonly evicted: Counter;
  private readonly keptLocal: Counter;
  private readonly interest: BusInterest;
  /** The broker's `credbroker_outbound_dropped_total`, once attached. */
  private dropped: RunningBroker['context']['metrics']['outboundDropped'] | null = null;
  private up = false;
  /** Connected once already: a later `up` is a recovery. */
  private wasUp = false;
  private downLoggedAt = 0;
  private closed = false;
  /** Redis answered the last probe (a PING, within COMMAND_TIMEOUT_MS). */
  private answering = true;
  private probing = false;
  private readonly prober: NodeJS.Timeout;

  private readonly url: string;

  private constructor(readonly id: string, target: RedisTarget, private readonly log: Logger, opts: BusOptions) {
    this.url = target.url;
    // Commands fail at once while Redis is away (no unbounded offline queue), and after
    // COMMAND_TIMEOUT_MS without a reply, except subscriptions: those wait and go out on
    // reconnect, so that none is lost (a SUBACK waits for them within that time only).
    const base = redisOptions(target, { retryStrategy: (n) => Math.min(50 * 2 ** n, 2000), connectionName: `credbroker:${id}` });
    // Auto-pipelining: the commands of many CONNECTs and publishes in one event-loop turn go out in one write.
    const failFast: RedisOptions = { ...base, enableOfflineQueue: false, maxRetriesPerRequest: 0, enableAutoPipelining: true, commandTimeout: COMMAND_TIMEOUT_MS };
    const url = target.url;
    this.conns = { sub: new Redis(url, { ...base, maxRetriesPerRequest: null }), pub: new Redis(url, failFast), store: new Redis(url, failFast) };
    for (const [name, conn] of Object.entries(this.conns)) {
      conn.on('error', (err: Error) => this.down(`${name}: ${err.message}`));
      conn.on('close', () => this.down(`${name}: connection closed`));
      conn.on('ready', () => this.check());
    }
    this.rejected = new Counter({ name: 'credbroker_bus_rejected_total', help: 'Messages from the bus dropped: not sealed with a cluster key this node holds (bad_seal), not a sealed message (malformed), seen already (replay), sealed outside the time window (stale)', labelNames: ['reason'] as const, registers: [] });
    this.evicted = new Counter({ name: 'credbroker_bus_senders_evicted_total', help: 'Bus senders forgotten by the replay check (past its bound); their replays are then stopped by the time window only', registers: [] });
    const reject = rejectLog(log, this.rejected);
    const seal = new BusSeal(() => opts.keys.keys(), reject, () => this.evicted.inc());
    const wire = opts.unsealed ? unsealedWire() : sealedWire(seal);
    this.gauge = new Gauge({ name: 'credbroker_bus_connected', help: 'Redis bus reachable (1) or not (0); over a node\'s workers, the lowest', registers: [], aggregator: 'min', collect: () => this.gauge.set(this.ready() ? 1 : 0) });
    this.degraded = new Counter({ name: 'credbroker_bus_degraded_total', help: 'Store writes and reads skipped while Redis was unreachable (retained not kept, offline message not queued, clean-session wipe skipped, queue read cut short, publish delivered on this broker only)', labelNames: ['what'] as const, registers: [] });
    this.takeovers = new Counter({ name: 'credbroker_bus_takeovers_total', help: 'Client-id takeovers across brokers: sent to the previous owner, received and closed, received for a session already gone (stale), or a claim Redis did not take', labelNames: ['event'] as const, registers: [] });
    const quiet = opts.broadcastTakeover ? null : announcement(id);
    this.interest = new BusInterest(this.conns.store, id);
    this.mq = new BusEmitter(this.conns.pub, this.conns.sub, wire, {
      quiet, localOnly: (n) => this.degraded.inc({ what: 'local_only' }, n), malformed: () => reject('malformed'), closing: () => { this.closed = true; },
    }, this.interest);
    const mq = this.mq;
    this.keptLocal = new Counter({
      name: 'credbroker_bus_kept_local_total', help: 'Publishes that no other broker subscribes to: delivered on this broker only, never sent to Redis', registers: [],
      collect() { this.reset(); this.inc(mq.keptLocal); },
    });
    this.prober = setInterval(() => this.probe(), PROBE_MS).unref();
    const ownership = opts.broadcastTakeover ? null : new Ownership(this.conns.store, this.mq, id, log, (e: TakeoverEvent) => this.takeovers.inc({ event: e }));
    this.ownership = ownership;
    this.persistence = busPersistence(this.conns.store, {
      maxQueuedMessages: opts.maxQueuedMessages, claimKey, seal: opts.unsealed ? null : seal,
      ...(ownership && { startClean: (client: Client) => ownership.claimClean(client, sessionKeys(client.id)) }),
    }, (what: Degraded) => this.degraded.inc({ what }), () => this.dropped?.inc({ reason: 'offline_messages' }));
  }

  /**
   * Connects to Redis, waiting as long as it takes (logged while it waits).
   * @param id the aedes id of the broker that will use this bus
   */
  static async connect(target: RedisTarget, id: string, log: Logger, opts: BusOptions): Promise<Bus> {
    const bus = new Bus(id, target, log, opts);
    await Promise.all(Object.values(bus.conns).map((c) => (c.status === 'ready' ? null : new Promise((r) => c.once('ready', r)))));
    bus.check();
    return bus;
  }

  /** What the broker takes (broker/server.ts `SharedState`). */
  get shared(): SharedState {
    return { id: this.id, mq: this.mq, persistence: this.persistence, ready: () => this.ready() };
  }

  ready(): boolean {
    return !this.closed && this.answering && Object.values(this.conns).every((c) => c.status === 'ready');
  }

  /** Once the broker runs on this bus: takeovers, and the bus metrics on the broker's registry. */
  async attach(broker: RunningBroker): Promise<void> {
    const registry = broker.context.metrics.registry;
    registry.registerMetric(this.gauge);
    registry.registerMetric(this.degraded);
    registry.registerMetric(this.takeovers);
    registry.registerMetric(this.rejected);
    registry.registerMetric(this.evicted);
    registry.registerMetric(this.keptLocal);
    this.dropped = broker.context.metrics.outboundDropped;
    if (this.ownership && broker.context.aedes) await this.ownership.attach(broker.context.aedes);
  }

  /** After the broker has closed (its clients' claims released): the connections. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.prober);
    this.ownership?.close();
    await Promise.all(Object.values(this.conns).map(endConnection));
  }

  private down(reason: string): void {
    if (this.closed) return;
    // A driver's message may echo the URL it was given (a password in it): through the one redactor.
    const why = redactUrl(reason);
    const now = Date.now();
    if (this.up || now - this.downLoggedAt >= DOWN_LOG_MS) {
      // Redis' own words (WRONGPASS, NOAUTH, NOPERM) name no password; the URL is shown redacted.
      if (AUTH_REFUSED.test(why)) this.log.error({ event: 'bus.auth_refused', bus: redactUrl(this.url), err: why }, 'Redis bus refused this node\'s user or password (see --bus): retrying');
      else this.log.warn({ event: this.up ? 'bus.down' : 'bus.unreachable', bus: redactUrl(this.url), err: why },
        this.up ? 'Redis bus lost: serving this broker\'s clients only until it is back' : 'Redis bus unreachable: retrying');
      this.downLoggedAt = now;
    }
    this.up = false;
  }

  /**
   * A PING on the store's connection: no reply within COMMAND_TIMEOUT_MS is an
   * outage like a lost connection (not ready: persistent CONNECTs get CONNACK 3,
   * `/readyz` 503), and the next reply ends it.
   */
  private probe(): void {
    if (this.probing || this.closed || this.conns.store.status !== 'ready') return;
    this.probing = true;
    this.conns.store.ping().then(() => {
      this.probing = false;
      if (this.answering) return;
      this.answering = true;
      this.check();
    }, (err: Error) => {
      this.probing = false;
      if (this.conns.store.status !== 'ready') return; // a lost connection: its own events tell
      this.answering = false;
      this.down(`store: ${err.message}`);
    });
  }

  private check(): void {
    if (this.up || !this.ready()) return;
    this.up = true;
    // Claims and subscription roots written during the outage failed, and a Redis that restarted empty has none.
    if (this.wasUp) {
      this.ownership?.reclaim();
      this.interest.reannounce();
    }
    this.wasUp = true;
    this.log.info({ event: 'bus.up', bus: redactUrl(this.url), id: this.id }, 'Redis bus connected');
  }
}

/** Counts each dropped message and logs them at most once per `REJECT_LOG_MS`: reasons and counts only, never a payload. */
function rejectLog(log: Logger, counter: Counter<'reason'>): (reason: RejectReason) => void {
  let loggedAt = 0;
  const since: Partial<Record<RejectReason, number>> = {};
  return (reason) => {
    counter.inc({ reason });
    since[reason] = (since[reason] ?? 0) + 1;
    const now = Date.now();
    if (now - loggedAt < REJECT_LOG_MS) return;
    loggedAt = now;
    log.warn({ event: 'bus.rejected', dropped: { ...since } }, 'messages from the bus dropped: not sealed with the cluster key, replayed or stale');
    for (const k of Object.keys(since)) delete since[k as RejectReason];
  };
}
