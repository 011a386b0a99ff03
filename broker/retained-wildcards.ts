import { Readable } from 'node:stream';
import { topicMatches } from '../acl/index.js';

type Stored = { topic: string };
interface RetainedStore {
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<Stored>;
}

/**
 * Retained messages for filters whose `+` matches an empty level
 * (`a/+` and `a/`, `a/+/c` and `a//c`, §4.7.1.3): aedes' persistences match
 * retained topics with qlobber without `match_empty_levels`, and miss them
 * (live delivery, through mqemitter, does not). A filter with `+` is read from
 * the store as the `#` filter of its literal prefix (`a/+/c` as `a/#`), which
 * the store matches right, and what it returns is matched here by MQTT's rules
 * (acl/match.ts), each topic once. Filters without `+` are read as they are.
 */
export function retainedWithEmptyLevels<P>(persistence: P): P {
  const store = persistence as unknown as RetainedStore;
  const combi = store.createRetainedStreamCombi.bind(persistence);
  Object.assign(persistence as object, {
    createRetainedStreamCombi: (patterns: string[]) => {
      if (!patterns.some((p) => p.includes('+'))) return combi(patterns);
      const read = [...new Set(patterns.map(widened))];
      return Readable.from(matching(combi(read), patterns));
    },
  });
  return persistence;
}

/** `a/b/+/c` → `a/b/#`; a filter without `+` as it is. */
function widened(filter: string): string {
  const levels = filter.split('/');
  const plus = levels.indexOf('+');
  return plus === -1 ? filter : [...levels.slice(0, plus), '#'].join('/');
}

async function* matching(source: AsyncIterable<Stored>, patterns: readonly string[]): AsyncGenerator<Stored> {
  const sent = new Set<string>();
  for await (const packet of source) {
    if (sent.has(packet.topic) || !patterns.some((p) => topicMatches(p, packet.topic))) continue;
    sent.add(packet.topic);
    yield packet;
  }
}
