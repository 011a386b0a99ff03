import type { Client } from 'aedes';

type Packet = { messageId?: number };

/** aedes' persistence as aedes holds it (the promise form of its methods), where a clean session's state goes through. */
interface Store {
  setup(broker: unknown): Promise<unknown>;
  cleanSubscriptions(client: Client): Promise<unknown>;
  cleanIncoming(client: Client): Promise<unknown>;
  incomingStorePacket(client: Client, packet: Packet): Promise<unknown>;
  incomingGetPacket(client: Client, packet: Packet): Promise<unknown>;
  incomingDelPacket(client: Client, packet: Packet): Promise<unknown>;
  outgoingStream(client: Client): AsyncIterable<unknown> | Iterable<unknown>;
  outgoingClearMessageId(client: Client, packet: Packet): Promise<unknown>;
}

/** aedes-persistence's broadcast of a session's removed subscriptions, which every broker's copy of the offline-subscription index follows. */
const REMOVED_SUBSCRIPTIONS = '$SYS/sub/rm';

/**
 * A clean session (clean=1) of a broker on the bus lives in that broker's memory
 * only: nothing of it goes to Redis, since it ends with its connection
 * [MQTT-3.1.2-6] and no other broker ever resumes it. Its routing is the bus'
 * (mqemitter), its will is kept by aedes, its subscriptions were never stored
 * (aedes stores those of persistent sessions only), and its outgoing QoS 1/2
 * state never reaches the store (aedes keeps it on the client); what is left
 * here:
 *
 * - **Its CONNECT makes one round trip to Redis** (`start`, ownership.ts
 *   `claimClean`): the ownership claim and the drop of a previous persistent
 *   session of the id, in one script. aedes' two steps for it (cleanSubscriptions
 *   before the client is registered, cleanIncoming after) become one, at the
 *   second, so that a displaced local client's last writes land before the drop,
 *   as aedes orders them. A dropped session's subscriptions leave every broker's
 *   offline index by aedes-persistence's own broadcast.
 * - **Its QoS 2 receipts** (held until PUBREL) stay in a map on the client,
 *   bounded by aedes' `maxInflightInbound` as in one process.
 * - **Its stored queue is not read**: the CONNECT's script emptied it, and aedes
 *   would discard what a clean session finds there anyway.
 * - **Its PUBACKs and PUBCOMPs clear nothing in the store**: aedes never stores a
 *   clean session's outgoing messages there.
 *
 * `start` failing (Redis away) degrades as before: the CONNECT succeeds without
 * the drop, counted (`onFailed`).
 */
export function keepCleanSessionsLocal(persistence: unknown, start: (client: Client) => Promise<string[]>, onFailed: () => void): void {
  const store = persistence as Store;
  const m = {
    setup: store.setup.bind(store), cleanSubscriptions: store.cleanSubscriptions.bind(store), cleanIncoming: store.cleanIncoming.bind(store),
    incomingStorePacket: store.incomingStorePacket.bind(store), incomingGetPacket: store.incomingGetPacket.bind(store),
    incomingDelPacket: store.incomingDelPacket.bind(store), outgoingStream: store.outgoingStream.bind(store),
    outgoingClearMessageId: store.outgoingClearMessageId.bind(store),
  };
  let broker: { publish(packet: { topic: string; payload: Buffer }, done: () => void): void } | null = null;
  const started = new WeakSet<Client>();
  const receipts = new WeakMap<Client, Map<number | undefined, Packet>>();
  const receiptsOf = (client: Client) => {
    let r = receipts.get(client);
    if (!r) receipts.set(client, (r = new Map()));
    return r;
  };
  const begin = async (client: Client) => {
    started.add(client);
    const filters = await start(client).catch(() => { onFailed(); return []; });
    if (filters.length && broker) {
      const payload = Buffer.from(JSON.stringify({ clientId: client.id, subs: filters.map((topic) => ({ topic })) }));
      broker.publish({ topic: REMOVED_SUBSCRIPTIONS, payload }, () => {});
    }
  };
  Object.assign(store, {
    // aedes checks that setup is an async function.
    setup: async (b: typeof broker) => { broker = b; return m.setup(b); },
    // aedes calls it on clean CONNECTs only: the drop is in `begin`, one step later.
    cleanSubscriptions: (client: Client) => (client.clean ? Promise.resolve() : m.cleanSubscriptions(client)),
    // aedes calls it on a clean CONNECT once the client is registered, and again as it closes.
    cleanIncoming: (client: Client) => {
      if (!client.clean) return m.cleanIncoming(client);
      if (started.has(client) || client.closed) {
        receipts.delete(client);
        return Promise.resolve();
      }
      return begin(client);
    },
    incomingStorePacket: (client: Client, packet: Packet) => {
      if (!client.clean) return m.incomingStorePacket(client, packet);
      receiptsOf(client).set(packet.messageId, packet);
      return Promise.resolve();
    },
    incomingGetPacket: (client: Client, packet: Packet) => {
      if (!client.clean) return m.incomingGetPacket(client, packet);
      const held = receipts.get(client)?.get(packet.messageId);
      return held ? Promise.resolve(held) : Promise.reject(new Error('no such packet'));
    },
    incomingDelPacket: (client: Client, packet: Packet) => {
      if (!client.clean) return m.incomingDelPacket(client, packet);
      receipts.get(client)?.delete(packet.messageId);
      return Promise.resolve();
    },
    outgoingStream: (client: Client) => (client.clean ? [] : m.outgoingStream(client)),
    outgoingClearMessageId: (client: Client, packet: Packet) => (client.clean ? Promise.resolve(undefined) : m.outgoingClearMessageId(client, packet)),
  });
}
