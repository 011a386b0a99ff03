import { createRequire } from 'node:module';
import type { Client } from 'aedes';
import type { Redis } from 'ioredis';
import type { BusSeal } from './bus-auth.js';
import { keepCleanSessionsLocal } from './clean-sessions.js';
import type { SessionKeys } from './ownership.js';

/** What a store write that failed (Redis unreachable) turns into instead of an error: counted, and the message still delivered live. */
export type Degraded = 'retained' | 'retained_read' | 'offline_queue' | 'clean_session' | 'queued_read';

/** The promise form of the methods wrapped here (aedes 1.x calls them without a callback). */
interface AsyncStore {
  storeRetained(packet: unknown): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: unknown): Promise<void>;
  cleanSubscriptions(client: unknown): Promise<unknown>;
  cleanIncoming(client: unknown): Promise<void>;
  outgoingStream(client: unknown): AsyncIterable<unknown>;
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown>;
  outgoingUpdate(client: unknown, packet: unknown): Promise<void>;
  outgoingClearMessageId(client: unknown, packet: unknown): Promise<unknown>;
  incomingStorePacket(client: unknown, packet: unknown): Promise<void>;
  incomingGetPacket(client: unknown, packet: unknown): Promise<unknown>;
  putWill(client: unknown, packet: unknown): Promise<void>;
  getWill(client: unknown): Promise<unknown>;
  delWill(client: unknown): Promise<unknown>;
  streamWill(brokers: unknown): AsyncIterable<unknown>;
}

/** aedes-persistence-redis 12's key for a client's stored queue (a list of packet keys). */
const queueKey = (clientId: string) => `outgoing:${encodeURIComponent(clientId)}`;

/** aedes-persistence-redis 12's keys of a client id's persistent session: what a clean CONNECT drops. */
export const sessionKeys = (clientId: string): SessionKeys => ({
  subscriptions: `client:${encodeURIComponent(clientId)}`,
  queue: queueKey(clientId),
  incoming: `incoming:${encodeURIComponent(clientId)}`,
  index: 'clients',
});

// CommonJS with no types of its own: module.exports is the factory.
const redisPersistence = createRequire(import.meta.url)('aedes-persistence-redis') as (opts: { conn: Redis; maxSessionDelivery?: number }) => { asyncPersistence: AsyncStore };

/**
 * aedes-persistence-redis 12 on `conn`, as the brokers of a bus use it:
 *
 * - **Wills are not stored in Redis.** aedes keeps a client's will in memory and
 *   publishes it from there; the Redis copy only serves to publish the wills of a
 *   broker that died, with no session to hold them to the ACL (credbroker's
 *   authorizePublish refuses a will without one), so they would never be sent and
 *   would fail again every few minutes. A crashed process's wills are lost, as
 *   they are without a bus. Three Redis commands fewer per CONNECT.
 * - **A write that fails during a Redis outage degrades** instead of failing the
 *   publish or the CONNECT: a retained message is delivered but not kept, a
 *   message for an offline persistent session is not queued, a clean session's
 *   leftovers are not wiped, a queue read ends early, a new subscription gets no
 *   retained messages. Each is counted
 *   (`onDegraded`). Reading a persistent session (clean=false) still fails its
 *   CONNECT: without its subscriptions the broker would answer sessionPresent
 *   wrongly.
 * - **A persistent session's stored queue is bounded** by `maxQueuedMessages`
 *   while its client is connected to no broker (no ownership claim in Redis), as
 *   broker/offline-queue.ts bounds it in one process: past it a newer message for
 *   that client id is not stored, the oldest are kept (`onDrop`). The count is
 *   Redis' own (the queue's length), so every broker of the bus sees the same;
 *   one round trip per stored message. The check and the store are two steps, so
 *   publishes in flight at once can pass the bound by their number; bytes are
 *   bounded through the count and `maxPacketBytes`.
 * - **Payloads are sealed** with the cluster key (`seal`, bus-auth.ts) in every
 *   packet kept in Redis: retained messages, stored queues, QoS 2 messages held
 *   until PUBREL. A Redis reader cannot read them, and a packet whose payload does
 *   not open (written there by someone else, or moved from another topic) is
 *   dropped, counted in `credbroker_bus_rejected_total`. `seal` null: the bench's
 *   unsealed baseline only.
 * - **A clean session stays in this broker's memory** (clean-sessions.ts) when
 *   `startClean` is given: its CONNECT's one script claims the id and drops a
 *   previous persistent session (ownership.ts `claimClean`).
 */
export function busPersistence(
  conn: Redis,
  opts: { maxQueuedMessages: number; claimKey: (clientId: string) => string; seal: BusSeal | null; startClean?: (client: Client) => Promise<string[]> },
  onDegraded: (what: Degraded) => void,
  onDrop: () => void,
): unknown {
  const p = redisPersistence({ conn });
  const a = p.asyncPersistence;
  if (opts.seal) sealPayloads(a, opts.seal);
  const store = a.outgoingEnqueueCombi.bind(a);
  const within = async (subs: { clientId: string }[]) => {
    if (!Number.isFinite(opts.maxQueuedMessages)) return subs;
    const pipe = conn.pipeline();
    for (const sub of subs) pipe.exists(opts.claimKey(sub.clientId)).llen(queueKey(sub.clientId));
    const res = (await pipe.exec()) ?? [];
    return subs.filter((_, i) => {
      const [online, queued] = [res[2 * i]?.[1], res[2 * i + 1]?.[1]];
      if (online === 1 || (queued as number) < opts.maxQueuedMessages) return true;
      onDrop();
      return false;
    });
  };
  const enqueueBounded = async (subs: { clientId: string }[], packet: unknown) => {
    if (!subs?.length) return;
    const kept = await within(subs);
    if (kept.length) await store(kept, packet);
  };
  const soften = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, what: Degraded, fallback: R) =>
    (...args: A): Promise<R> => fn.apply(a, args).catch(() => { onDegraded(what); return fallback; });
  const storeRetained = soften(a.storeRetained, 'retained', undefined);
  const enqueue = soften((sub: { clientId: string }, packet: unknown) => enqueueBounded([sub], packet), 'offline_queue', undefined);
  const enqueueCombi = soften(enqueueBounded, 'offline_queue', undefined);
  const cleanSubscriptions = soften(a.cleanSubscriptions, 'clean_session', undefined);
  const cleanIncoming = soften(a.cleanIncoming, 'clean_session', undefined);
  const outgoingStream = a.outgoingStream;
  const retainedStream = a.createRetainedStreamCombi;
  Object.assign(a, {
    storeRetained, outgoingEnqueue: enqueue, outgoingEnqueueCombi: enqueueCombi, cleanSubscriptions, cleanIncoming,
    outgoingStream: (client: unknown) => endOnError(outgoingStream.call(a, client), () => onDegraded('queued_read')),
    createRetainedStreamCombi: (patterns: string[]) => endOnError(retainedStream.call(a, patterns), () => onDegraded('retained_read')),
    putWill: async () => {},
    getWill: async () => null,
    delWill: async () => null,
    streamWill: () => endOnError((async function* none() {})(), () => {}),
  });
  if (opts.startClean) keepCleanSessionsLocal(p, opts.startClean, () => onDegraded('clean_session'));
  return p;
}

type Stored = { topic: string; payload?: Buffer | string; cmd?: string; brokerId?: unknown; brokerCounter?: unknown };
const context = (p: Stored) => `stored:${p.topic}`;

/** Wraps the store's methods that write or read packets so that their payloads are sealed in Redis. */
function sealPayloads(a: AsyncStore, seal: BusSeal): void {
  const sealed = <P extends Stored>(p: P): P => (p.payload === undefined ? p : { ...p, payload: seal.sealStored(context(p), Buffer.from(p.payload)) });
  const opened = <P extends Stored>(p: P | null | undefined): P | null => {
    if (!p || p.payload === undefined) return p ?? null;
    const payload = seal.openStored(context(p), Buffer.from(p.payload));
    return payload ? { ...p, payload } : null;
  };
  async function* openAll(source: AsyncIterable<unknown>): AsyncGenerator<unknown> {
    for await (const p of source) {
      const plain = opened(p as Stored);
      if (plain) yield plain;
    }
  }
  const m = {
    storeRetained: a.storeRetained, outgoingEnqueueCombi: a.outgoingEnqueueCombi, outgoingUpdate: a.outgoingUpdate,
    outgoingClearMessageId: a.outgoingClearMessageId, incomingStorePacket: a.incomingStorePacket, incomingGetPacket: a.incomingGetPacket,
    outgoingStream: a.outgoingStream, createRetainedStreamCombi: a.createRetainedStreamCombi,
  };
  Object.assign(a, {
    // An empty retained payload deletes the topic's retained message: it stays as it is.
    storeRetained: (p: Stored) => m.storeRetained.call(a, Buffer.from(p.payload ?? '').length ? sealed(p) : p),
    outgoingEnqueueCombi: (subs: { clientId: string }[], p: Stored) => m.outgoingEnqueueCombi.call(a, subs, sealed(p)),
    outgoingUpdate: async (client: unknown, p: Stored) => {
      const copy = sealed(p);
      await m.outgoingUpdate.call(a, client, copy);
      // The store names the packet's key on it when the caller had not.
      Object.assign(p, { brokerId: copy.brokerId, brokerCounter: copy.brokerCounter });
    },
    outgoingClearMessageId: async (client: unknown, p: unknown) => opened(await m.outgoingClearMessageId.call(a, client, p) as Stored) ?? undefined,
    incomingStorePacket: (client: unknown, p: Stored) => m.incomingStorePacket.call(a, client, sealed(p)),
    incomingGetPacket: async (client: unknown, p: unknown) => {
      const plain = opened(await m.incomingGetPacket.call(a, client, p) as Stored);
      if (!plain) throw new Error('no such packet');
      return plain;
    },
    outgoingStream: (client: unknown) => openAll(m.outgoingStream.call(a, client)),
    createRetainedStreamCombi: (patterns: string[]) => openAll(m.createRetainedStreamCombi.call(a, patterns)),
  });
}

/** The items of `source` until it ends or fails (a failure ends it quietly, after `onError`). */
async function* endOnError<T>(source: AsyncIterable<T>, onError: () => void): AsyncGenerator<T> {
  try {
    yield* source;
  } catch {
    onError();
  }
}
