import { createRequire } from 'node:module';

type Sub = { clientId: string; topic: string; qos: number };
interface Trie {
  add(filter: string, sub: Sub): void;
  remove(filter: string, sub: { clientId: string; topic: string }): void;
  match(topic: string): Sub[];
}
/** The promise form aedes 1.x calls. */
interface SubscriptionStore {
  addSubscriptions(client: { id: string }, subs: { topic: string; qos: number }[]): Promise<void>;
  removeSubscriptions(client: { id: string }, filters: string[]): Promise<void>;
  cleanSubscriptions(client: { id: string }): Promise<void>;
  subscriptionsByTopic(topic: string): Promise<Sub[]>;
}

// The trie class aedes-persistence itself uses, from its own dependencies (credbroker does not depend on qlobber).
const fromPersistence = createRequire(createRequire(import.meta.url).resolve('aedes-persistence'));
const QlobberSub = fromPersistence('qlobber/aedes/qlobber-sub') as new (options: object) => Trie;

/**
 * Offline queueing where `+` matches an empty level (`a/+` and `a/`, `a/+/c`
 * and `a//c`, [MQTT-4.7.1-3]): aedes-persistence (in memory) finds the
 * persistent sessions a message is queued for with a qlobber trie built
 * without `match_empty_levels`, so they miss it (mqemitter, for live delivery,
 * and aedes-persistence-redis set the option). The QoS 1/2 filters that hold a
 * `+` are kept here too, in a trie with the option; a topic with an empty level
 * takes those from here and the rest from the store. Other topics cost nothing.
 */
export function queueWithEmptyLevels<P>(persistence: P): P {
  const store = persistence as unknown as SubscriptionStore;
  const add = store.addSubscriptions.bind(persistence);
  const remove = store.removeSubscriptions.bind(persistence);
  const clean = store.cleanSubscriptions.bind(persistence);
  const byTopic = store.subscriptionsByTopic.bind(persistence);
  const trie = new QlobberSub({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true });
  /** Client id → its filters in `trie`, so that a clean session drops them without a store read. */
  const held = new Map<string, Set<string>>();
  const drop = (clientId: string, filter: string) => {
    const filters = held.get(clientId);
    if (!filters?.delete(filter)) return;
    trie.remove(filter, { clientId, topic: filter });
    if (filters.size === 0) held.delete(clientId);
  };

  const keep = (clientId: string, subs: { topic: string; qos: number }[]) => {
    for (const sub of subs) {
      if (!sub.topic.includes('+')) continue;
      // As the store does: QoS 0 subscriptions queue nothing, and a new QoS replaces the old.
      if (sub.qos === 0) { drop(clientId, sub.topic); continue; }
      trie.add(sub.topic, { ...sub, clientId });
      const filters = held.get(clientId);
      if (filters) filters.add(sub.topic); else held.set(clientId, new Set([sub.topic]));
    }
  };

  // The store's own promise is returned where there is nothing to do here: no extra promise on a CONNECT or a publish.
  Object.assign(persistence as object, {
    addSubscriptions: (client: { id: string }, subs: { topic: string; qos: number }[]) =>
      (subs.some((s) => s.topic.includes('+')) ? add(client, subs).then(() => keep(client.id, subs)) : add(client, subs)),
    removeSubscriptions: (client: { id: string }, filters: string[]) =>
      (held.has(client.id) ? remove(client, filters).then(() => { for (const f of filters) drop(client.id, f); }) : remove(client, filters)),
    cleanSubscriptions: (client: { id: string }) =>
      (held.has(client.id) ? clean(client).then(() => { for (const f of held.get(client.id) ?? []) drop(client.id, f); }) : clean(client)),
    subscriptionsByTopic: (topic: string): Promise<Sub[]> =>
      (hasEmptyLevel(topic) ? byTopic(topic).then((subs) => [...subs.filter((s) => !s.topic.includes('+')), ...trie.match(topic)]) : byTopic(topic)),
  });
  return persistence;
}

function hasEmptyLevel(topic: string): boolean {
  return topic === '' || topic.startsWith('/') || topic.endsWith('/') || topic.includes('//');
}
