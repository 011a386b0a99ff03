import { randomBytes } from 'node:crypto';
import type { BusSeal } from './bus-auth.js';
import type { BusWire } from './bus-emitter.js';

/**
 * Frames go out sealed with the cluster key; what comes in is opened and
 * dropped when that fails, and the bus' copy of this broker's own message is
 * dropped unopened (its subscribers had it directly). The seal also drops the
 * copies Redis sends when several subscriptions of this broker match a channel.
 */
export function sealedWire(seal: BusSeal): BusWire {
  return {
    wrap: (channel, frame) => seal.seal(channel, frame),
    unwrap: (channel, message, route) => (seal.isOwn(message) ? null : seal.open(channel, message, route)),
  };
}

// origin(8) seq(4)
const UNSEALED_HEADER = 12;

/**
 * The bench's unsealed baseline (set in code only, never from configuration):
 * each frame carries this process' random origin and a number ahead of it, so
 * that, as with a sealed one, the bus' copy of its own message is dropped, and so
 * are the further copies of one message that several matching subscriptions
 * bring (Redis sends them back to back).
 */
export function unsealedWire(): BusWire {
  const origin = randomBytes(8);
  let seq = 0;
  const last = Buffer.alloc(UNSEALED_HEADER);
  return {
    wrap: (_channel, frame) => {
      const out = Buffer.allocUnsafe(UNSEALED_HEADER + frame.length);
      origin.copy(out);
      out.writeUInt32BE((seq = (seq + 1) >>> 0), 8);
      frame.copy(out, UNSEALED_HEADER);
      return out;
    },
    unwrap: (_channel, message) => {
      if (message.length < UNSEALED_HEADER || origin.equals(message.subarray(0, 8))) return null;
      const header = message.subarray(0, UNSEALED_HEADER);
      if (last.equals(header)) return null;
      header.copy(last);
      return message.subarray(UNSEALED_HEADER);
    },
  };
}
