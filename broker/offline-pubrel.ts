/** The promise form aedes 1.x calls. */
interface OutgoingStore {
  outgoingUpdate(client: { id: string }, packet: { cmd: string; messageId?: number; brokerId?: string; brokerCounter?: number }): Promise<void>;
}

/** The key every stored PUBREL gets here; broker ids are UUIDs, so no PUBLISH has it. */
const RELEASE = 'pubrel';

/**
 * QoS 2 to a persistent session with more than one message in flight
 * [MQTT-4.3.3]: at PUBREC aedes stores the PUBREL in place of the PUBLISH,
 * and aedes-persistence (in memory) finds a stored packet by broker id and
 * counter first. A PUBREL carries neither, so the second PUBREC's PUBREL
 * matched the first stored PUBREL, renumbered it, and was never stored: the
 * first message was never released (its PUBREL went out with the second's
 * packet id) and its PUBCOMP found nothing. Each PUBREL is stored here as its
 * own copy, keyed by its packet id, so it matches only itself, and aedes' own
 * object, which it is about to write, is never held by the store.
 */
export function keyedReleases<P>(persistence: P): P {
  const store = persistence as unknown as OutgoingStore;
  const update = store.outgoingUpdate.bind(persistence);
  Object.assign(persistence as object, {
    outgoingUpdate: (client: { id: string }, packet: { cmd: string; messageId?: number }) =>
      update(client, packet.cmd === 'pubrel' ? { cmd: 'pubrel', messageId: packet.messageId, brokerId: RELEASE, brokerCounter: packet.messageId } : packet),
  });
  return persistence;
}
