/**
 * Persistent sessions that hold no subscription, remembered by aedes'
 * persistence (in memory, or in Redis on a bus), so that their CONNACK says
 * Session Present [MQTT-3.2.2-2]. aedes' persistences keep only subscriptions
 * and queues: a session with neither left no trace. A marker subscription is
 * stored with the session; its filter holds U+0000, which no topic name may
 * hold [MQTT-4.7.3-2], so it matches no PUBLISH and reaches no router. aedes
 * reads a session only through `subscriptionsByClient` (on a CONNECT with
 * clean=0): the marker is taken out there and reported as `sessionPresent`
 * (the aedes patch `session-present-empty` reads it), and stored when missing.
 * A clean CONNECT wipes it with the rest of the session (cleanSubscriptions).
 */
export const SESSION_MARKER = '$credbroker\u0000session';

type Sub = { topic: string; qos: number };
/** The promise form aedes 1.x calls. */
interface SessionStore {
  subscriptionsByClient(client: { id: string }): Promise<Sub[]>;
  addSubscriptions(client: { id: string }, subs: Sub[]): Promise<unknown>;
}

/** Wraps `persistence` in place (aedes takes the same object); returns it. */
export function rememberEmptySessions<P>(persistence: P): P {
  const store = persistence as unknown as SessionStore;
  const byClient = store.subscriptionsByClient.bind(persistence);
  const add = store.addSubscriptions.bind(persistence);
  Object.assign(persistence as object, {
    subscriptionsByClient: async (client: { id: string }): Promise<Sub[] & { sessionPresent?: boolean }> => {
      const stored = await byClient(client);
      const subs: Sub[] & { sessionPresent?: boolean } = stored.filter((s) => s.topic !== SESSION_MARKER);
      if (subs.length === stored.length) await add(client, [{ topic: SESSION_MARKER, qos: 0 }]);
      else subs.sessionPresent = true;
      return subs;
    },
  });
  return persistence;
}
