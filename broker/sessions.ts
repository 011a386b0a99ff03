import type { Client } from 'aedes';
import { remoteAddress } from './address.js';
import { transportOf } from './transport.js';
import type { Logger } from './logger.js';
import type { BrokerMetrics } from './metrics.js';
import { DeadlineWheel } from './deadlines.js';
import { SortedKeys } from './sorted-keys.js';
import { forgetWill, sessionOf, setSession, type KickReason, type Session } from './session.js';

/** Closing a device's session wherever it is held (BrokerContext.kicks). */
export interface DeviceKicks {
  /** True when a session was closed here. */
  kickDevice(deviceId: string, reason: KickReason): boolean;
}

/**
 * Live sessions by device, each closed at its token's expiry plus leeway
 * (a deadline wheel: no timer per session, no periodic scan of all sessions).
 */
export class Sessions implements DeviceKicks {
  private readonly byDevice = new Map<string, Client>();
  /** byDevice's keys in order: `GET /sessions` pages read them from a cursor (session-list.ts). */
  private readonly order = new SortedKeys();
  private readonly deadlines = new DeadlineWheel<Client>((c) => this.kick(c, 'expired'));
  private readonly leewayMs: number;
  private readonly neverExpire: boolean;
  private readonly metrics: BrokerMetrics;
  private readonly log: Logger;
  private readonly onKick: ((s: Session, reason: KickReason) => void) | undefined;

  /** `onKick`: told of every session the broker closes (a grant's kicks are audited there). */
  constructor(opts: { leewaySec: number; neverExpire: boolean; metrics: BrokerMetrics; log: Logger; onKick?: (s: Session, reason: KickReason) => void }) {
    this.leewayMs = opts.leewaySec * 1000;
    this.neverExpire = opts.neverExpire;
    this.metrics = opts.metrics;
    this.metrics.countConnectedWith(() => this.byDevice.size);
    this.log = opts.log;
    this.onKick = opts.onKick;
  }

  /** Called from authenticate, before CONNACK. */
  attach(client: Client, session: Session): void {
    setSession(client, session);
    this.schedule(client, session);
  }

  /** Called once aedes has registered the client (after any takeover of an older session). */
  ready(client: Client): void {
    const s = sessionOf(client);
    if (!s) return;
    // aedes reports ready at the end of its CONNECT steps, even for a client that closed meanwhile (a
    // takeover, or a DISCONNECT right behind the CONNACK, while a shared store was read), after its
    // `clientDisconnect`: listed and counted, it would never leave.
    if (client.closed) { this.deadlines.delete(client); return; }
    if (s.ended) { client.close(); return; }
    this.byDevice.set(s.deviceId, client);
    this.order.add(s.deviceId);
    // Debug, not info: a fleet reconnecting after an outage would write a line per device (refusals and kicks are at info).
    if (this.log.isLevelEnabled('debug')) this.log.debug({ event: 'session.open', device: s.deviceId, kind: s.kind, transport: transportOf(client), address: remoteAddress(client) }, 'session opened');
  }

  gone(client: Client): void {
    const s = sessionOf(client);
    if (!s) return;
    this.deadlines.delete(client);
    if (this.byDevice.get(s.deviceId) === client) {
      this.byDevice.delete(s.deviceId);
      this.order.delete(s.deviceId);
    }
  }

  clientOf(deviceId: string): Client | undefined {
    return this.byDevice.get(deviceId);
  }

  get size(): number {
    return this.byDevice.size;
  }

  /** Moves the deadline after a renewal. */
  extend(client: Client, expiresAt: number): void {
    const s = sessionOf(client);
    if (!s || s.ended) return;
    s.expiresAt = expiresAt;
    this.schedule(client, s);
  }

  /** True when the session is past its deadline: checked again on every publish and subscribe. */
  expired(s: Session, now = Date.now()): boolean {
    return !this.neverExpire && now > s.expiresAt + this.leewayMs;
  }

  /** Closes a session for `reason`; its will is dropped. */
  kick(client: Client, reason: KickReason): void {
    const s = sessionOf(client);
    if (!s || s.ended) return;
    s.ended = reason;
    this.deadlines.delete(client);
    if ((client as { closed?: boolean }).closed) return; // it left on its own before the deadline fired
    forgetWill(client);
    this.metrics.kicks.inc({ reason });
    // At shutdown every session is closed: one `broker.stopping` line says how many, not one line each.
    this.log[reason === 'shutdown' ? 'debug' : 'info']({ event: 'session.kick', device: s.deviceId, reason, kind: s.kind, address: remoteAddress(client) }, 'session closed by broker');
    this.onKick?.(s, reason);
    client.close();
  }

  kickDevice(deviceId: string, reason: KickReason): boolean {
    const c = this.byDevice.get(deviceId);
    if (!c) return false;
    this.kick(c, reason);
    return true;
  }

  /** Closes the device's (or grant's) session if it holds one of `jtis` (a revoked token family, a revoked grant). */
  kickTokens(deviceId: string, jtis: ReadonlySet<string>, reason: KickReason = 'token_revoked'): boolean {
    const c = this.byDevice.get(deviceId);
    const jti = c && sessionOf(c)?.jti;
    if (!c || !jti || !jtis.has(jti)) return false;
    this.kick(c, reason);
    return true;
  }

  /** Closes every token session whose signing key is no longer among `keys` (retired past its time, or killed by `keys rotate --now`). */
  kickRetiredKeys(keys: ReadonlyMap<string, unknown>): number {
    let n = 0;
    for (const c of [...this.byDevice.values()]) {
      const kid = sessionOf(c)?.kid;
      if (kid && !keys.has(kid)) { this.kick(c, 'key_retired'); n++; }
    }
    return n;
  }

  /** The device ids with a live session after `after`, in order (a page reads as many as it shows). */
  idsAfter(after: string): Generator<string, void, undefined> {
    return this.order.after(after);
  }

  all(): IterableIterator<Client> {
    return this.byDevice.values();
  }

  /** Stops the deadline sweep (broker shutdown). */
  close(): void {
    this.deadlines.close();
  }

  private schedule(client: Client, s: Session): void {
    if (!this.neverExpire) this.deadlines.set(client, s.expiresAt + this.leewayMs);
  }
}
