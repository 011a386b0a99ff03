import type { AedesPublishPacket, Client } from 'aedes';
import type { QueueLimits } from './limits.js';

/**
 * What to do with one delivery to one client:
 * - `forward`: queue it for the client's socket;
 * - `drop_messages` / `drop_bytes`: a QoS 0 message over the client's message or byte bound, dropped;
 * - `disconnect`: the client stayed over its byte bound (or passed the hard ceiling): close it.
 */
export type QueueVerdict = 'forward' | 'drop_messages' | 'drop_bytes' | 'disconnect';

/**
 * A client's backlog in the stream of bytes aedes has written to its socket
 * (aedes has no queue of its own: every delivery goes straight into the
 * socket's write buffer, which is what grew without bound).
 * `ends[i]` is where the i-th forwarded PUBLISH ends, counted in `total`;
 * those from `head` on are still in the socket's buffer.
 */
interface Backlog {
  ends: number[];
  head: number;
  total: number;
  /** When the client was first seen over the byte bound (0: it is not). */
  overSince: number;
}

const BACKLOG = Symbol('credbroker.outboundBacklog');
type WithBacklog = Client & { [BACKLOG]?: Backlog };

/**
 * Per-client bounds on what the broker holds for delivery, checked once per
 * delivery against the socket's own write buffer (`writableLength`, the same
 * figure on TCP, TLS and the WebSocket stream). A client whose buffer is empty
 * costs one property read and no state; the backlog bookkeeping exists only
 * while the client is behind.
 *
 * The message count is exact up to one event-loop turn: aedes writes a
 * delivery on the next turn, so a burst forwarded within one turn is counted
 * once its bytes have reached the buffer. The byte bound is the buffer itself.
 */
export class OutboundQueues {
  constructor(private readonly limits: QueueLimits, private readonly now: () => number = Date.now) {}

  admit(client: Client, packet: AedesPublishPacket): QueueVerdict {
    const buffered = (client.conn as { writableLength?: number }).writableLength ?? 0;
    const c = client as WithBacklog;
    let b = c[BACKLOG];
    if (buffered === 0) {
      if (b) c[BACKLOG] = undefined;
      return 'forward';
    }
    b ??= c[BACKLOG] = { ends: [], head: 0, total: 0, overSince: 0 };
    const l = this.limits;
    if (buffered > l.hardQueuedBytes) return 'disconnect';
    if (buffered > l.maxQueuedBytes) {
      const t = this.now();
      if (b.overSince === 0) b.overSince = t;
      else if (t - b.overSince > l.queueStallMs) return 'disconnect';
    } else b.overSince = 0;

    // Everything but the last `buffered` bytes of the stream has left the broker.
    const sent = b.total - buffered;
    while (b.head < b.ends.length && b.ends[b.head]! <= sent) b.head++;
    if (b.head > 1024 && b.head * 2 > b.ends.length) {
      b.ends = b.ends.slice(b.head);
      b.head = 0;
    }
    if (packet.qos === 0) {
      if (b.ends.length - b.head >= l.maxQueuedMessages) return 'drop_messages';
      if (buffered >= l.maxQueuedBytes) return 'drop_bytes';
    }
    b.total += publishBytes(packet);
    b.ends.push(b.total);
    return 'forward';
  }
}

/** The size of a PUBLISH on the wire (topic length taken as bytes: an estimate for non-ASCII topics). */
export function publishBytes(p: Pick<AedesPublishPacket, 'topic' | 'qos' | 'payload'>): number {
  const body = 2 + p.topic.length + (p.qos > 0 ? 2 : 0) + (p.payload?.length ?? 0);
  return 1 + (body < 128 ? 1 : body < 16_384 ? 2 : body < 2_097_152 ? 3 : 4) + body;
}
