import memoryModule, { type AedesMemoryPersistence } from 'aedes-persistence';
import type { AedesPublishPacket as Packet } from 'aedes';
import { publishBytes } from './outbound-queue.js';
import type { QueueLimits } from './limits.js';

// The package is CommonJS: its module.exports is the factory, which the types call `default`.
const memory = memoryModule as unknown as () => AedesMemoryPersistence;
type Sub = { clientId: string };
/** The promise form aedes 1.x calls (the package's types declare only the callback form). */
interface Outgoing {
  outgoingEnqueueCombi(subs: Sub[], packet: Packet): Promise<void>;
  outgoingUpdate(client: { id: string }, packet: Stored): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: Stored): Promise<Stored | undefined>;
}
/** A stored copy: the PUBLISH, or the PUBREL that replaces it once a QoS 2 copy is received (PUBREC). */
type Stored = Packet | { cmd: 'pubrel'; messageId: number };
/** One client id's stored copies: how many, their bytes, and each sent copy's bytes by packet id. */
type Count = { messages: number; bytes: number; sent: Map<number, number> };

/** Why a message for an offline session was not stored. */
export type OfflineDrop = 'offline_messages' | 'offline_bytes';

/**
 * aedes' in-memory persistence with each client id's stored QoS 1/2 queue
 * bounded by `maxQueuedMessages` / `maxQueuedBytes`: aedes stores every
 * message for every persistent session (clean=false) and the store has no
 * limit of its own, so one observer on devices/# that went away would grow
 * the heap for ever. Past the bound, a new message for a client that is not
 * connected is dropped and the queue keeps its oldest (Mosquitto's
 * `max_queued_messages`). A connected client's copies are always stored:
 * aedes reads them back to send them, and its socket is bounded by
 * OutboundQueues.
 *
 * The counts follow the store: up on every stored copy, down on every copy
 * the store gives back from `outgoingClearMessageId` (the PUBACK/PUBCOMP
 * path, and the path aedes drains a queue through when a session is cleaned).
 * A QoS 2 copy comes back as the PUBREL that replaced it at PUBREC, which has
 * no topic or payload: its bytes are remembered by packet id when it is sent.
 * An id's entry is deleted when it reaches zero.
 */
export function boundedPersistence(
  limits: Pick<QueueLimits, 'maxQueuedMessages' | 'maxQueuedBytes'>,
  onDrop: (reason: OfflineDrop) => void,
): AedesMemoryPersistence {
  const p = memory();
  const inner = p as unknown as Outgoing;
  const enqueueCombi = inner.outgoingEnqueueCombi.bind(p);
  const update = inner.outgoingUpdate.bind(p);
  const clear = inner.outgoingClearMessageId.bind(p);
  const counts = new Map<string, Count>();
  // The broker the store was set up with; `clients` (connected ones, by id) is public in aedes but not in its types.
  const isConnected = (id: string) => (p as unknown as { broker?: { clients: Record<string, unknown> } }).broker?.clients[id] !== undefined;

  const admit = (clientId: string, size: number): boolean => {
    const c = counts.get(clientId);
    if (c && !isConnected(clientId)) {
      const reason = c.messages >= limits.maxQueuedMessages ? 'offline_messages' : c.bytes + size > limits.maxQueuedBytes ? 'offline_bytes' : null;
      if (reason) {
        onDrop(reason);
        return false;
      }
    }
    if (c) { c.messages++; c.bytes += size; } else counts.set(clientId, { messages: 1, bytes: size, sent: new Map() });
    return true;
  };

  // The common cases cost no extra promise: a topic with no persistent subscriber
  // (aedes stores nothing), and a PUBACK from a client with nothing counted (a clean session).
  const store = (subs: Sub[], packet: Packet): Promise<void> => {
    if (subs.length === 0) return enqueueCombi(subs, packet);
    const size = publishBytes(packet);
    const kept = subs.filter((s) => admit(s.clientId, size));
    return kept.length ? enqueueCombi(kept, packet) : Promise.resolve();
  };
  const cleared = (id: string, gone: Stored | undefined): Stored | undefined => {
    const c = gone ? counts.get(id) : undefined;
    if (gone && c) {
      c.messages--;
      const packetId = gone.messageId ?? -1;
      c.bytes -= gone.cmd === 'publish' ? publishBytes(gone) : c.sent.get(packetId) ?? 0;
      c.sent.delete(packetId);
      if (c.messages <= 0) counts.delete(id);
    }
    return gone;
  };
  Object.assign(p, {
    outgoingEnqueue: (sub: Sub, packet: Packet) => store([sub], packet),
    outgoingEnqueueCombi: store,
    // aedes numbers a stored PUBLISH here as it sends it; a QoS 2 one's PUBREL comes back with the number only.
    outgoingUpdate: (client: { id: string }, packet: Stored) => {
      if (packet.cmd === 'publish' && packet.qos === 2 && packet.messageId !== undefined) counts.get(client.id)?.sent.set(packet.messageId, publishBytes(packet));
      return update(client, packet);
    },
    outgoingClearMessageId: (client: { id: string }, packet: Stored) =>
      counts.has(client.id) ? clear(client, packet).then((gone) => cleared(client.id, gone)) : clear(client, packet),
  });
  return p;
}
