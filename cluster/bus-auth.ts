import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { BusKeys } from './bus-keys.js';

/** Why a message from the bus was dropped (`credbroker_bus_rejected_total{reason}`). */
export type RejectReason = 'bad_seal' | 'replay' | 'stale' | 'malformed';

const VERSION = 1;
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
  private seq = 0;
  /** Last sequence seen per sender (hex), oldest-heard first, for eviction. */
  private readonly seen = new Map<string, number>();
  /** The last message taken, and the subscriptions it came through. */
  private last: { header: Buffer; routes: Set<string> } | null = null;

  constructor(
    private readonly keys: () => BusKeys,
    private readonly onReject: (reason: RejectReason) => void,
    private readonly onEvict: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  seal(channel: string | Buffer, plain: Buffer): Buffer {
    if (this.seq === MAX_SEQ) { this.sender = randomBytes(8); this.seq = 0; }
    const { kid, key } = this.keys().sealing;
    const header = Buffer.allocUnsafe(HEADER);
    header[0] = VERSION;
    kid.copy(header, 1);
    this.sender.copy(header, 5);
    header.writeUInt32BE(++this.seq, 13);
    header.writeUIntBE(this.now(), 17, 6);
    const cipher = createCipheriv('aes-256-gcm', key, header.subarray(5, 17));
    setAad(cipher, header, channel);
    return Buffer.concat([header, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  }

  /**
   * The plain message, or null (dropped: counted unless it is a fan-out copy).
   * @param route the subscription it came through: the pattern, or '' for the channel itself
   */
  open(channel: string | Buffer, sealed: Buffer, route: string): Buffer | null {
    if (sealed.length < HEADER + TAG || sealed[0] !== VERSION) return this.reject('malformed');
    const header = sealed.subarray(0, HEADER);
    if (this.last?.header.equals(header) && !this.last.routes.has(route)) {
      this.last.routes.add(route); // another subscription's copy of the message just taken
      return null;
    }
    const key = this.keys().opening.get(header.readUInt32BE(1));
    if (!key) return this.reject('bad_seal');
    let plain: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, header.subarray(5, 17));
      setAad(decipher, header, channel);
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
      plain = Buffer.concat([decipher.update(sealed.subarray(HEADER, sealed.length - TAG)), decipher.final()]);
    } catch {
      return this.reject('bad_seal');
    }
    if (Math.abs(this.now() - header.readUIntBE(17, 6)) > STALE_MS) return this.reject('stale');
    const sender = header.toString('hex', 5, 13);
    const seq = header.readUInt32BE(13);
    const last = this.seen.get(sender);
    if (last !== undefined && seq <= last) return this.reject('replay');
    this.seen.delete(sender); // re-inserted last: the map stays in order of the latest message
    this.seen.set(sender, seq);
    if (this.seen.size > MAX_SENDERS) {
      this.seen.delete(this.seen.keys().next().value!);
      this.onEvict();
    }
    this.last = { header: Buffer.from(header), routes: new Set([route]) };
    return plain;
  }

  /**
   * Seals what is kept in Redis rather than sent (a retained or queued message's
   * payload), bound to `context` (kind and topic), so it cannot be read there nor
   * moved to another topic. No replay check: a stored message is read many times.
   */
  sealStored(context: string, plain: Buffer): Buffer {
    const { kid, key } = this.keys().sealing;
    const header = Buffer.allocUnsafe(STORED_HEADER);
    header[0] = STORED;
    kid.copy(header, 1);
    randomBytes(12).copy(header, 5);
    const cipher = createCipheriv('aes-256-gcm', key, header.subarray(5));
    setAad(cipher, header, context);
    return Buffer.concat([header, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  }

  /** The plain payload of a stored message, or null (dropped, counted). */
  openStored(context: string, sealed: Buffer): Buffer | null {
    if (sealed.length < STORED_HEADER + TAG || sealed[0] !== STORED) return this.reject('malformed');
    const header = sealed.subarray(0, STORED_HEADER);
    const key = this.keys().stored.get(header.readUInt32BE(1));
    if (!key) return this.reject('bad_seal');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, header.subarray(5));
      setAad(decipher, header, context);
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
      return Buffer.concat([decipher.update(sealed.subarray(STORED_HEADER, sealed.length - TAG)), decipher.final()]);
    } catch {
      return this.reject('bad_seal');
    }
  }

  private reject(reason: RejectReason): null {
    this.onReject(reason);
    return null;
  }
}

/** The authenticated data: the header, then the channel (GCM takes two calls as one, without a copy). */
function setAad(c: { setAAD(b: Buffer): unknown }, header: Buffer, channel: string | Buffer): void {
  c.setAAD(header);
  c.setAAD(typeof channel === 'string' ? Buffer.from(channel) : channel);
}
