import type { Aedes } from 'aedes';
import type { BrokerContext } from './context.js';
import type { RetainedLimits } from './limits.js';

/** Why a retained message was not kept. */
export type RetainedRefusal = 'retained_payload' | 'retained_count' | 'retained_bytes';

interface Owned { count: number; bytes: number; readonly topics: Map<string, number> }

/**
 * Who owns each retained message (the device whose retained publish set it) and
 * how much each device owns, so that retained messages are capped per device by
 * count and bytes, and a revoked device's retained messages can be found and
 * cleared. Held in memory, like aedes' default persistence that holds the
 * messages themselves (both start empty with the process).
 */
export class RetainedLedger {
  private readonly ownerOf = new Map<string, string>();
  private readonly byDevice = new Map<string, Owned>();

  constructor(private readonly caps: RetainedLimits) {}

  /**
   * Accounts for a retained publish of `bytes` on `topic` by `deviceId`: an empty
   * payload deletes the topic's retained message (whoever owned it), anything
   * else replaces it — unless it would take the device over a cap, in which case
   * nothing changes and the reason is returned (the message is then delivered
   * but not retained).
   */
  publish(deviceId: string, topic: string, bytes: number): RetainedRefusal | null {
    if (bytes === 0) {
      this.release(topic);
      return null;
    }
    if (bytes > this.caps.payloadBytes) return 'retained_payload';
    const mine = this.byDevice.get(deviceId);
    const replaced = mine?.topics.get(topic) ?? null; // bytes of its own message on this topic, if any
    const count = (mine?.count ?? 0) + (replaced === null ? 1 : 0);
    if (count > this.caps.perDevice) return 'retained_count';
    if ((mine?.bytes ?? 0) - (replaced ?? 0) + bytes > this.caps.bytesPerDevice) return 'retained_bytes';
    this.release(topic);
    const owned = mine ?? { count: 0, bytes: 0, topics: new Map<string, number>() };
    owned.topics.set(topic, bytes);
    owned.count++;
    owned.bytes += bytes;
    this.byDevice.set(deviceId, owned);
    this.ownerOf.set(topic, deviceId);
    return null;
  }

  /** Forgets every retained message the device owns; returns their topics. */
  takeAll(deviceId: string): string[] {
    const owned = this.byDevice.get(deviceId);
    if (!owned) return [];
    this.byDevice.delete(deviceId);
    for (const topic of owned.topics.keys()) this.ownerOf.delete(topic);
    return [...owned.topics.keys()];
  }

  /** Retained messages held, over all devices. */
  get size(): number {
    return this.ownerOf.size;
  }

  private release(topic: string): void {
    const owner = this.ownerOf.get(topic);
    if (owner === undefined) return;
    this.ownerOf.delete(topic);
    const owned = this.byDevice.get(owner)!;
    owned.count--;
    owned.bytes -= owned.topics.get(topic) ?? 0;
    owned.topics.delete(topic);
    if (owned.count === 0) this.byDevice.delete(owner);
  }
}

/**
 * Clears the retained messages a device owns (it was revoked), or a grant
 * (revoked or expired, broker/grant-retained.ts): from the ledger at once, from aedes' persistence right after (an empty retained payload
 * deletes, MQTT 3.1.1 §3.3.1.3), so no later subscriber gets them.
 */
export function clearRetainedOf(ctx: BrokerContext, owner: string, why: 'revoked' | 'grant_expired' = 'revoked'): void {
  const topics = ctx.retained.takeAll(owner);
  if (topics.length === 0 || !ctx.aedes) return;
  deleteRetained(ctx.aedes, topics).then(
    () => {
      ctx.metrics.retainedCleared.inc(topics.length);
      ctx.log.info({ event: 'retained.cleared', device: owner, why, messages: topics.length }, 'retained messages of a revoked device or a revoked or expired grant cleared');
    },
    (err: unknown) => ctx.log.error({ event: 'retained.clear_failed', device: owner, err: (err as Error).message }, 'could not clear retained messages'),
  );
}

async function deleteRetained(aedes: Aedes, topics: readonly string[]): Promise<void> {
  const persistence = (aedes as unknown as { persistence: { storeRetained(packet: object): Promise<void> } }).persistence;
  for (const topic of topics) {
    await persistence.storeRetained({ cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: true, dup: false });
  }
}
