import type { Client } from 'aedes';

/**
 * The filters granted to each connection, to cap how many it holds: beyond the
 * cap a new filter gets SUBACK 0x80, while re-subscribing to a filter already
 * held (a QoS change) is always granted. Counted here rather than from aedes'
 * `client.subscriptions`, which a persistent session fills only after the store
 * has answered, so the filters of one SUBSCRIBE packet would all see the same count.
 *
 * A connection holding one filter (most devices) keeps it as a plain string: a
 * Set of one costs ≈ 150 bytes more per idle connection.
 */
export class SubscriptionLimit {
  private readonly granted = new WeakMap<Client, string | Set<string>>();

  constructor(private readonly max: number) {}

  /** True (and recorded) when `client` may hold `filter`. */
  admit(client: Client, filter: string): boolean {
    const held = this.granted.get(client);
    if (held === undefined) {
      if (this.max < 1) return false;
      this.granted.set(client, filter);
      return true;
    }
    if (typeof held === 'string') {
      if (held === filter) return true;
      if (this.max < 2) return false;
      this.granted.set(client, new Set([held, filter]));
      return true;
    }
    if (held.has(filter)) return true;
    if (held.size >= this.max) return false;
    held.add(filter);
    return true;
  }

  /** After an UNSUBSCRIBE (aedes' `unsubscribe` event). */
  release(client: Client, filters: readonly string[]): void {
    const held = this.granted.get(client);
    if (typeof held === 'string') { if (filters.includes(held)) this.granted.delete(client); }
    else if (held) for (const f of filters) held.delete(f);
  }
}
