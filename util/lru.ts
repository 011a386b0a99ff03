/**
 * A map bounded by entry count that forgets the least recently used entry
 * first. A `Map` keeps insertion order, so re-inserting on every read keeps
 * the least recently used entry at the front, where eviction takes it.
 *
 * @example
 * const lru = new Lru<string, number>(2);
 * lru.set('a', 1); lru.set('b', 2); lru.get('a'); lru.set('c', 3); // 'b' is evicted
 */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();

  /** `max` 0 keeps nothing. */
  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`Lru bound must be a whole number ≥ 0, got ${max}`);
  }

  get size(): number {
    return this.map.size;
  }

  /** The value, marked as the most recently used. */
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  /** Stores `value` as the most recently used; returns how many older entries were evicted to stay within the bound. */
  set(key: K, value: V): number {
    if (this.max === 0) return 0;
    this.map.delete(key);
    this.map.set(key, value);
    let evicted = 0;
    while (this.map.size > this.max) {
      this.map.delete(this.map.keys().next().value as K);
      evicted++;
    }
    return evicted;
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  /** Least recently used first; deleting the current entry while iterating is safe. */
  entries(): IterableIterator<[K, V]> {
    return this.map.entries();
  }
}
