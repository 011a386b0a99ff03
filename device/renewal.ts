import { randomBytes } from 'node:crypto';
import { isRenewRejectionCode, tokenTopics, TOKEN_TOPIC_PREFIX, type RenewAcceptedBody, type RenewRequestBody } from '../protocol/renewal.js';
import { DeviceError, type DeviceErrorCode } from './errors.js';

export interface RenewedEvent {
  expiresAt: Date;
  roundTripMs: number;
  rotatedRefresh: boolean;
}

/** Publishes one renewal request (QoS 1); `sent` gets an error when it could not be sent. */
export type PublishRequest = (topic: string, payload: string, sent: (err?: Error) => void) => void;

export interface RenewalExchangeOptions {
  deviceId: string;
  /** How long to wait for an answer before giving up on it (default 10 s). */
  timeoutMs?: number;
  /** Asks for a shorter token lifetime than the profile's (request field `ttlSeconds`). */
  ttlSeconds?: number;
  /**
   * Takes an accepted answer (saves, then uses it) before anyone hears of it;
   * returns whether the refresh credential was rotated (and taken).
   */
  adopt(answer: RenewAcceptedBody): boolean;
  /** An `accepted` that came after its request timed out: adopted already, and good. */
  late(ev: RenewedEvent): void;
}

const DEFAULT_RENEW_TIMEOUT_MS = 10_000;
/** Remembered request ids of timed-out renewals, so a late `accepted` is still taken. */
const MAX_LATE = 8;

interface Pending {
  resolve(ev: RenewedEvent): void;
  reject(err: DeviceError): void;
  timer: NodeJS.Timeout;
  sentAt: number;
}

/**
 * The renewal exchange of one device (SPEC "Renewal"): each request carries a
 * random requestId, and only an answer to a request this device asked is
 * taken. The last few requests that timed out are remembered, so that a late
 * `accepted` is still adopted: its token is good, and the broker may have
 * rotated the refresh credential with it.
 */
export class RenewalExchange {
  readonly topics: ReturnType<typeof tokenTopics>;
  readonly #opts: RenewalExchangeOptions;
  readonly #pending = new Map<string, Pending>();
  readonly #late = new Map<string, number>();

  constructor(opts: RenewalExchangeOptions) {
    this.#opts = opts;
    this.topics = tokenTopics(opts.deviceId);
  }

  /** Publishes one renewal request and waits for its answer; rejects with the broker's code, ERR_RENEW_TIMEOUT or ERR_DISCONNECTED. */
  request(publish: PublishRequest): Promise<RenewedEvent> {
    const requestId = randomBytes(16).toString('base64url');
    const { ttlSeconds } = this.#opts;
    const body: RenewRequestBody = { requestId, ...(ttlSeconds && { ttlSeconds }) };
    const timeoutMs = this.#opts.timeoutMs ?? DEFAULT_RENEW_TIMEOUT_MS;
    return new Promise<RenewedEvent>((resolve, reject) => {
      const sentAt = performance.now();
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        this.#late.set(requestId, sentAt);
        if (this.#late.size > MAX_LATE) this.#late.delete(this.#late.keys().next().value!);
        reject(new DeviceError('ERR_RENEW_TIMEOUT', `no answer to the renewal request within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(requestId, { resolve, reject, timer, sentAt });
      publish(this.topics.renew, JSON.stringify(body), (err) => {
        if (err) this.#settle(requestId)?.reject(new DeviceError('ERR_DISCONNECTED', 'connection closed before the renewal request was sent'));
      });
    });
  }

  /** Takes a message: true when it was on a token topic (an answer or not), which is never the application's. */
  receive(topic: string, payload: Buffer): boolean {
    if (topic === this.topics.accepted) this.#onAccepted(payload);
    else if (topic === this.topics.rejected) this.#onRejected(payload);
    return topic.startsWith(TOKEN_TOPIC_PREFIX);
  }

  /** Fails every request still waiting (the connection closed, the client stopped). */
  failAll(code: DeviceErrorCode, message: string): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id)!.reject(new DeviceError(code, message));
  }

  /** The waiting request `id`, taken out of the bookkeeping; undefined when none waits. */
  #settle(id: string): Pending | undefined {
    const p = this.#pending.get(id);
    if (!p) return undefined;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    return p;
  }

  #onRejected(payload: Buffer): void {
    const msg = parseJson(payload);
    const id = msg?.requestId;
    const p = typeof id === 'string' ? this.#settle(id) : undefined;
    if (!p || !msg) return; // not an answer to a request we are waiting for
    const message = typeof msg.message === 'string' ? msg.message : 'renewal rejected';
    // A code this client does not know (a newer broker's) is not acted upon: named in the message only.
    if (isRenewRejectionCode(msg.code)) p.reject(new DeviceError(msg.code, message));
    else p.reject(new DeviceError('ERR_INTERNAL', typeof msg.code === 'string' ? `${msg.code.slice(0, 64)}: ${message}` : message));
  }

  #onAccepted(payload: Buffer): void {
    const msg = parseJson(payload);
    const id = msg?.requestId;
    if (typeof id !== 'string') return;
    const waiting = this.#pending.get(id);
    const lateSentAt = this.#late.get(id);
    if (!waiting && lateSentAt === undefined) return; // not ours (or answered already)
    const answer = asAccepted(msg);
    if (!answer) {
      this.#settle(id)?.reject(new DeviceError('ERR_BAD_ANSWER', 'malformed accepted answer'));
      return;
    }
    // Adopted (saved, then used) before anyone hears of it.
    const rotatedRefresh = this.#opts.adopt(answer);
    const ev: RenewedEvent = { expiresAt: new Date(answer.accessTokenExpiresAt), roundTripMs: Math.round(performance.now() - (waiting?.sentAt ?? lateSentAt!)), rotatedRefresh };
    const p = this.#settle(id);
    if (p) return p.resolve(ev);
    this.#late.delete(id);
    this.#opts.late(ev);
  }
}

function parseJson(payload: Buffer): Record<string, unknown> | null {
  try {
    const v = JSON.parse(payload.toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function asAccepted(m: Record<string, unknown> | null): RenewAcceptedBody | null {
  if (!m || typeof m.requestId !== 'string' || typeof m.accessToken !== 'string' || typeof m.accessTokenExpiresAt !== 'string') return null;
  if (Number.isNaN(Date.parse(m.accessTokenExpiresAt))) return null;
  if (m.refreshCredential !== undefined && (typeof m.refreshCredential !== 'string' || typeof m.refreshCredentialExpiresAt !== 'string')) return null;
  return m as unknown as RenewAcceptedBody;
}
