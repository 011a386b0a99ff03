import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import type { BusKeys } from './bus-keys.js';

/** Why a message from the bus was dropped (`credbroker_bus_rejected_total{reason}`). */
export type RejectReason = 'bad_seal' | 'replay' | 'stale' | 'malformed';

/** A message sent on the bus; its plain text is a bus-frame.ts frame. (1 was the msgpack of earlier releases: refused as malformed.) */
const VERSION = 3;
/** A message stored in Redis (retained, queued): no sender or time, a random nonce. version(1) kid(4) nonce(12). */
const STORED = 2;
const STORED_HEADER = 17;
// Header: version(1) kid(4) sender(8) seq(4) sealed-at ms(6). The nonce is sender‖seq: unique per key
// as long as a sender never reuses a sequence number (it takes a new random id before seq wraps).
const HEADER = 23;
const TAG = 16;
const MAX_SEQ = 0xffff_ffff;
/** A message sealed longer ago (or later, by clock skew) than this is dropped: the replay window of a receiver that just started. */
export const STALE_MS = 15_000;
/** Senders remembered for replay checks; past this the longest silent one is forgotten (counted). */
export const MAX_SENDERS = 4096;

/**
 * Seals and opens the messages a cluster puts on its Redis bus with AES-256-GCM
 * under the cluster key (bus-keys.ts), so that a Redis reader can neither read
 * nor forge them: the channel (topic) is authenticated with the header, so a
 * sealed message cannot be moved to another channel.
 *
 * Replays: every sealing process has a random sender id and numbers its messages;
 * a receiver keeps the last number seen per sender and drops one not above it,
 * and drops anything sealed outside ±`STALE_MS` (what covers a receiver that never
 * saw the sender). Redis delivers one connection's publishes in order, so a valid
 * message is never behind its sender's last one — except the copies Redis sends
 * when several of this connection's subscriptions match one channel: those arrive
 * back to back, each through another subscription (`route`), and are dropped
 * quietly; the same message again through a route it came by is a replay.
 */
export class BusSeal {
  private sender = randomBytes(8);
  /** The id before the last change of `sender`: its messages may still be on their way back. */
  private previous: Buffer | null = null;
  private seq = 0;
  /** Last sequence seen per sender (its 8 bytes as a latin1 string), oldest-heard first, for eviction. */
  private readonly seen = new Map<string, number>();
  /** The header of the last message taken (zeros, no version: none yet), and the subscriptions it came through. */
  private readonly lastHeader = Buffer.alloc(HEADER);
  private readonly lastRoutes = new Set<string>();

  constructor(
    private readonly keys: () => BusKeys,
    private readonly onReject: (reason: RejectReason) => void,
    private readonly onEvict: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  seal(channel: string | Buffer, plain: Buffer): Buffer {
    if (this.seq === MAX_SEQ) { this.previous = this.sender; this.sender = randomBytes(8); this.seq = 0; }
    const { kid, key } = this.keys().sealing;
    // The whole envelope in one buffer: the header written in place, the ciphertext and tag copied once.
    const out = Buffer.allocUnsafe(HEADER + plain.length + TAG);
    out[0] = VERSION;
    kid.copy(out, 1);
    this.sender.copy(out, 5);
    out.writeUInt32BE(++this.seq, 13);
    out.writeUIntBE(this.now(), 17, 6);
    const header = out.subarray(0, HEADER);
    return encrypt(key, header.subarray(5, 17), header, channel, plain, out);
  }

  /**
   * Whether this process sealed `sealed` (its sender id, in the clear in the
   * header): the bus' copy of a message this broker has delivered to its own
   * subscribers already, dropped without opening it. A forged message naming
   * this sender could only be one that opening would refuse.
   */
  isOwn(sealed: Buffer): boolean {
    if (sealed.length < HEADER || sealed[0] !== VERSION) return false;
    return this.sender.equals(sealed.subarray(5, 13)) || (this.previous !== null && this.previous.equals(sealed.subarray(5, 13)));
  }

  /**
   * The plain message, or null (dropped: counted unless it is a fan-out copy).
   * @param route the subscription it came through: the pattern, or '' for the channel itself
   */
  open(channel: string | Buffer, sealed: Buffer, route: string): Buffer | null {
    if (sealed.length < HEADER + TAG || sealed[0] !== VERSION) return this.reject('malformed');
    const header = sealed.subarray(0, HEADER);
    if (this.lastHeader.equals(header) && !this.lastRoutes.has(route)) {
      this.lastRoutes.add(route); // another subscription's copy of the message just taken
      return null;
    }
    const key = this.keys().opening.get(header.readUInt32BE(1));
    if (!key) return this.reject('bad_seal');
    const plain = decrypt(key, header.subarray(5, 17), header, channel, sealed);
    if (!plain) return this.reject('bad_seal');
    if (Math.abs(this.now() - header.readUIntBE(17, 6)) > STALE_MS) return this.reject('stale');
    const sender = header.toString('latin1', 5, 13);
    const seq = header.readUInt32BE(13);
    const last = this.seen.get(sender);
    if (last !== undefined && seq <= last) return this.reject('replay');
    this.seen.delete(sender); // re-inserted last: the map stays in order of the latest message
    this.seen.set(sender, seq);
    if (this.seen.size > MAX_SENDERS) {
      this.seen.delete(this.seen.keys().next().value!);
      this.onEvict();
    }
    header.copy(this.lastHeader);
    this.lastRoutes.clear();
    this.lastRoutes.add(route);
    return plain;
  }

  /**
   * Seals what is kept in Redis rather than sent (a retained or queued message's
   * payload), bound to `context` (kind and topic), so it cannot be read there nor
   * moved to another topic. No replay check: a stored message is read many times.
   */
  sealStored(context: string, plain: Buffer): Buffer {
    const { kid, key } = this.keys().sealing;
    const out = Buffer.allocUnsafe(STORED_HEADER + plain.length + TAG);
    out[0] = STORED;
    kid.copy(out, 1);
    randomBytes(12).copy(out, 5);
    const header = out.subarray(0, STORED_HEADER);
    return encrypt(key, header.subarray(5), header, context, plain, out);
  }

  /** The plain payload of a stored message, or null (dropped, counted). */
  openStored(context: string, sealed: Buffer): Buffer | null {
    if (sealed.length < STORED_HEADER + TAG || sealed[0] !== STORED) return this.reject('malformed');
    const header = sealed.subarray(0, STORED_HEADER);
    const key = this.keys().stored.get(header.readUInt32BE(1));
    if (!key) return this.reject('bad_seal');
    return decrypt(key, header.subarray(5), header, context, sealed) ?? this.reject('bad_seal');
  }

  private reject(reason: RejectReason): null {
    this.onReject(reason);
    return null;
  }
}

/**
 * AES-256-GCM of `plain` into `out` after the header it already holds, then the tag.
 * The authenticated data is the header, then the channel (GCM takes two calls as one, without a copy).
 */
function encrypt(key: KeyObject, nonce: Buffer, header: Buffer, channel: string | Buffer, plain: Buffer, out: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(header);
  cipher.setAAD(typeof channel === 'string' ? Buffer.from(channel) : channel);
  cipher.update(plain).copy(out, header.length);
  cipher.final(); // GCM: no output, computes the tag
  cipher.getAuthTag().copy(out, header.length + plain.length);
  return out;
}

/** The plain text of `sealed` (header, ciphertext, tag), or null when it does not authenticate. */
function decrypt(key: KeyObject, nonce: Buffer, header: Buffer, channel: string | Buffer, sealed: Buffer): Buffer | null {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(header);
    decipher.setAAD(typeof channel === 'string' ? Buffer.from(channel) : channel);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
    const plain = decipher.update(sealed.subarray(header.length, sealed.length - TAG));
    decipher.final(); // GCM: no output, throws when the tag does not match
    return plain;
  } catch {
    return null;
  }
}
