import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { CONNACK } from '../protocol/connack.js';
import type { ClaimRejectionCode } from '../protocol/claim.js';
import { isRenewRejectionCode, RENEW_RETRY_LATER, RENEW_TERMINAL, type RenewAcceptedBody, type RenewRejectionCode } from '../protocol/renewal.js';
import { Backoff } from './backoff.js';
import { claimOnce, claimSource, type ClaimOptions, type ClaimSource } from './claim.js';
import { endClient, publishOn, subscribeGranted, subscribeTokenTopics, whileOpen, type Conn } from './connection.js';
import { checkCredentials, loadCredentials, saveCredentials, type DeviceCredentials } from './credentials-store.js';
import { DeviceError, type DeviceErrorCode } from './errors.js';
import { renewOnRefreshSession } from './refresh.js';
import { RenewalExchange, type RenewedEvent } from './renewal.js';
import { DEFAULT_JITTER_FRACTION, DEFAULT_RENEW_AT_FRACTION, renewalDelayMs, tokenLifetimeMs } from './renewal-schedule.js';

/**
 * The device side of credbroker (SPEC "Connecting" and "Renewal"), the
 * reference a firmware developer ports. Everything it does on the wire is
 * spelled out in provisioning.md, "How a device connects and renews".
 *
 * Lifecycle, in one paragraph: connect with the access token (username = client
 * id = device id). Subscribe `$devices/{id}/token/+`. At about 80 % of the
 * token's lifetime publish a renewal request on `$devices/{id}/token/renew`, and
 * on `…/accepted` save the new token to disk BEFORE using it. If the access token
 * is dead (expired by our clock, or the broker says CONNACK 4), connect with the
 * refresh credential instead: that session may only renew; renew, save the new
 * token and the rotated refresh credential, hang up, connect with the new token.
 * After a drop, reconnect with capped exponential backoff and full jitter. A
 * device the broker refuses outright (CONNACK 5 on both credentials) waits the
 * maximum backoff between tries and emits 'refused'.
 *
 * A unit that has no credentials yet can be given a claim instead (provisioning
 * by claim): before its first connect it claims its own credentials set once
 * (device/claim.ts), writes it to `credentialsPath` (0600) before using it, and
 * carries on as above. A later start finds the file and never claims again.
 *
 * Secrets: the claim credential, the access token and refresh credential go into the CONNECT packet
 * and the credentials file, nowhere else — not into events, errors or logs.
 *
 * This file is the session: the connect loop and what it adopts. The renewal
 * exchange is renewal.ts, the refresh path refresh.ts, the claim claim.ts.
 */

export interface DeviceClientOptions {
  /** Load from and persist renewed credentials to this file (atomic temp+rename, mode 0600). */
  credentialsPath?: string;
  /** Or give them directly (then nothing is persisted unless credentialsPath is also set). */
  credentials?: DeviceCredentials;
  /**
   * Provisioning by claim: used when there are no credentials (no file at
   * `credentialsPath` yet). The claimed set is written to `credentialsPath`.
   */
  claim?: ClaimOptions;
  /** Overrides credentials.brokerUrl. */
  url?: string;
  /** Default 0.8 of the token lifetime. */
  renewAtFraction?: number;
  /** Default 0.1 (± of the lifetime, so a fleet does not renew in lockstep). */
  jitterFraction?: number;
  /** Capped exponential reconnect backoff with full jitter, defaults 500 ms / 30 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Extra MQTT.js options (keepalive, TLS `ca`, ...). Identity, password, protocol and reconnect are set by the client. */
  mqtt?: IClientOptions;
  /** How long to wait for an answer to a renewal request before giving up on it (default 10 s). */
  renewTimeoutMs?: number;
  /** Ask for a shorter token lifetime than the profile's (request field `ttlSeconds`); the broker caps it at the profile's. */
  requestTtlSeconds?: number;
}

export interface DeviceClientEvents {
  connected: (info: { via: 'token' | 'refresh' }) => void;
  /** Provisioned by claim: the credentials set is held (and saved, with `credentialsPath`). */
  claimed: (info: { deviceId: string }) => void;
  /** A claim was refused for good (CONNACK 2, 4, 5: `code` null), or answered with a rejection code. */
  claimRejected: (info: { connackCode: number | null; code: ClaimRejectionCode | null; message: string }) => void;
  disconnected: (info: { reason: string }) => void;
  renewed: (ev: RenewedEvent) => void;
  renewRejected: (info: { code: RenewRejectionCode; message: string }) => void;
  refused: (info: { connackCode: number }) => void;
  message: (topic: string, payload: Buffer) => void;
  error: (err: Error) => void;
}

// Typed overloads for the events above (declaration merging with the class).
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface DeviceClient {
  on<E extends keyof DeviceClientEvents>(event: E, listener: DeviceClientEvents[E]): this;
  once<E extends keyof DeviceClientEvents>(event: E, listener: DeviceClientEvents[E]): this;
  off<E extends keyof DeviceClientEvents>(event: E, listener: DeviceClientEvents[E]): this;
  emit<E extends keyof DeviceClientEvents>(event: E, ...args: Parameters<DeviceClientEvents[E]>): boolean;
}

/** A token with less than this left is not worth a CONNECT: go straight to the refresh credential. */
const MIN_USABLE_TOKEN_MS = 1_000;

type OpenResult = { ok: true; conn: Conn } | { ok: false; connack: number | null; reason: string };

/** What one pass of the connect loop ended with; decides how long to wait before the next. */
type Outcome = 'session-ended' | 'refreshed' | 'claimed' | 'retry' | 'refused' | 'stopped';

export class DeviceClient extends EventEmitter {
  readonly deviceId: string;

  /** Null until a claim has provided them. */
  #creds: DeviceCredentials | null;
  readonly #claim: ClaimSource | null;
  readonly #credentialsPath: string | null;
  #url: string;
  readonly #opts: DeviceClientOptions;
  readonly #backoff: Backoff;
  readonly #renewal: RenewalExchange;

  /** The MQTT connection being opened or in use (token or refresh session). */
  #conn: MqttClient | null = null;
  /** The live token session, when there is one. */
  #session: Conn | null = null;
  #connected = false;
  #stopped = true;
  #loop: Promise<void> | null = null;
  #start: { promise: Promise<void>; resolve(): void; reject(err: Error): void } | null = null;
  #wake: (() => void) | null = null;
  #renewTimer: NodeJS.Timeout | null = null;
  #renewFailures = 0;
  /**
   * The access token the broker called invalid (CONNACK 4): never presented again.
   * Each try of a dead token is a failed login from this address; after a key
   * compromise (`keys rotate --now`) a fleet behind one NAT would spend the
   * address's failed-login budget on them and starve its own refresh CONNECTs.
   */
  #deadToken: string | null = null;
  /** The application's subscriptions: made again after every reconnect. */
  readonly #subscriptions = new Map<string, 0 | 1>();

  /** Loads the credentials file and persists every renewal back to it. */
  static async fromFile(path: string, opts: Omit<DeviceClientOptions, 'credentialsPath' | 'credentials'> = {}): Promise<DeviceClient> {
    return new DeviceClient({ ...opts, credentialsPath: path });
  }

  constructor(opts: DeviceClientOptions) {
    super();
    this.#opts = opts;
    this.#credentialsPath = opts.credentialsPath ?? null;
    this.#claim = opts.claim ? claimSource(opts.claim) : null;
    if (opts.credentials) this.#creds = { ...checkCredentials(opts.credentials) };
    else if (opts.credentialsPath && (!this.#claim || existsSync(opts.credentialsPath))) this.#creds = loadCredentials(opts.credentialsPath);
    else if (this.#claim) this.#creds = null;
    else throw new DeviceError('ERR_BAD_CREDENTIALS', 'DeviceClient needs credentials, credentialsPath or claim');
    this.deviceId = this.#creds?.deviceId ?? this.#claim!.deviceId;
    const url = opts.url ?? this.#creds?.brokerUrl ?? this.#claim!.brokerUrl;
    if (!url) throw new DeviceError('ERR_BAD_CREDENTIALS', 'claim: no broker URL (give url, or a claim file with brokerUrl)');
    this.#url = url;
    this.#backoff = new Backoff(opts.backoff);
    this.#renewal = new RenewalExchange({
      deviceId: this.deviceId, timeoutMs: opts.renewTimeoutMs, ttlSeconds: opts.requestTtlSeconds,
      adopt: (answer) => this.#adopt(answer),
      late: (ev) => {
        // A late answer to a request that timed out: the token is good, keep it.
        if (!this.#connected) return;
        this.#renewFailures = 0;
        this.emit('renewed', ev);
        this.#scheduleRenewal();
      },
    });
  }

  /** True while a full (token) session is up: publish and subscribe work. */
  get connected(): boolean {
    return this.#connected;
  }

  /** The current (possibly renewed) credentials. A copy: secrets, handle with care. @throws ERR_NOT_CONNECTED before a claim has provided them */
  credentials(): DeviceCredentials {
    if (!this.#creds) throw new DeviceError('ERR_NOT_CONNECTED', 'no credentials yet: the claim has not been answered');
    return { ...this.#creds };
  }

  /**
   * Starts connecting. Resolves on the first successful connect (with the token,
   * or via the refresh credential → renew → reconnect with the new token).
   * Rejects with `ERR_REFUSED` when the broker refuses the device (revoked,
   * credential dead) — the client then keeps retrying slowly, as a device in the
   * field should, until `stop()` — and with `ERR_STOPPED` if stopped first.
   */
  start(): Promise<void> {
    if (this.#start) return this.#start.promise;
    this.#stopped = false;
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    promise.catch(() => {}); // a caller that stopped listening must not crash the process
    this.#start = { promise, resolve, reject };
    this.#loop = this.#run();
    return promise;
  }

  /** Ends cleanly (MQTT DISCONNECT, so no will is published) and does not reconnect. */
  async stop(): Promise<void> {
    if (this.#stopped && !this.#loop) return;
    this.#stopped = true;
    this.#clearRenewTimer();
    this.#wake?.();
    this.#renewal.failAll('ERR_STOPPED', 'client stopped');
    this.#start?.reject(new DeviceError('ERR_STOPPED', 'client stopped before it connected'));
    const c = this.#conn;
    if (c) await endClient(c, false);
    await this.#loop;
    this.#loop = null;
    this.#start = null;
  }

  /** Publishes (QoS 0 or 1). Rejects with `ERR_NOT_CONNECTED`, or `ERR_DISCONNECTED` if the connection dropped before the PUBACK. */
  async publish(topic: string, payload: string | Buffer, opts: { qos?: 0 | 1 } = {}): Promise<void> {
    const s = this.#live();
    await whileOpen(s, new Promise<void>((resolve, reject) => {
      s.client.publish(topic, payload, { qos: opts.qos ?? 0 }, (err) => (err ? reject(new DeviceError('ERR_DISCONNECTED', `publish failed: ${err.message}`)) : resolve()));
    }));
  }

  /**
   * Subscribes; resolves with the granted QoS, 128 when the broker refused the
   * filter (not an exception: a refused filter is an answer). Granted filters
   * are subscribed again after every reconnect.
   */
  async subscribe(filter: string, opts: { qos?: 0 | 1 } = {}): Promise<number> {
    const s = this.#live();
    const qos = opts.qos ?? 0;
    const granted = await whileOpen(s, subscribeGranted(s.client, filter, qos));
    if (granted === 128) this.#subscriptions.delete(filter);
    else this.#subscriptions.set(filter, qos);
    return granted;
  }

  /** Renews now. Rejects with an Error whose `code` is the broker's rejection code (or ERR_RENEW_TIMEOUT, ERR_NOT_CONNECTED). */
  async renewNow(): Promise<RenewedEvent> {
    const s = this.#live();
    try {
      const ev = await this.#renewal.request(publishOn(s));
      this.#renewFailures = 0;
      this.emit('renewed', ev);
      this.#scheduleRenewal();
      return ev;
    } catch (err) {
      this.#noteRejection(err);
      throw err;
    }
  }

  // ---- the connect loop ------------------------------------------------------

  async #run(): Promise<void> {
    let justRefreshed = false;
    while (!this.#stopped) {
      let outcome: Outcome;
      try {
        outcome = await this.#attempt(justRefreshed);
      } catch (err) {
        this.#report(err);
        outcome = 'retry';
      }
      if (this.#stopped || outcome === 'stopped') break;
      justRefreshed = outcome === 'refreshed';
      if (justRefreshed || outcome === 'claimed') continue; // connect with the new token right away
      if (outcome === 'session-ended') this.#backoff.reset();
      await this.#sleep(outcome === 'refused' ? this.#backoff.refused() : this.#backoff.next());
    }
  }

  /** One pass: a claim while there are no credentials; then the access token if it is still good, else (or if the broker calls it invalid) the refresh credential. */
  async #attempt(justRefreshed: boolean): Promise<Outcome> {
    const creds = this.#creds;
    if (!creds) return this.#claimFlow();
    const left = Date.parse(creds.accessTokenExpiresAt) - Date.now();
    if (justRefreshed || (left > MIN_USABLE_TOKEN_MS && creds.accessToken !== this.#deadToken)) {
      const r = await this.#open(creds.accessToken);
      if (this.#stopped) return r.ok ? this.#discard(r.conn) : 'stopped';
      if (r.ok) return (await this.#tokenSession(r.conn, justRefreshed ? 'refresh' : 'token')) ? 'session-ended' : 'retry';
      if (r.connack !== CONNACK.BAD_USERNAME_OR_PASSWORD && r.connack !== CONNACK.NOT_AUTHORIZED) return 'retry'; // network trouble or server unavailable
      if (r.connack === CONNACK.BAD_USERNAME_OR_PASSWORD) this.#deadToken = creds.accessToken;
      if (justRefreshed) {
        // A token minted seconds ago is refused: refreshing again would only rotate credentials in a loop.
        this.#refused(r.connack);
        return 'refused';
      }
      // 4: the token is invalid or expired by the broker's clock. 5: this token may be
      // revoked on its own (`revoke --token`); the refresh credential says whether the device is.
    }
    return this.#refreshFlow();
  }

  /**
   * Claims the credentials set once, saves it (before using it: a unit that
   * lost it could not claim its id again) and hands over to the token flow.
   */
  async #claimFlow(): Promise<Outcome> {
    const r = await claimOnce(this.#url, this.#claim!, { mqtt: this.#opts.mqtt });
    if (this.#stopped) return 'stopped';
    if (r.outcome !== 'claimed') {
      if (r.outcome === 'refused') {
        this.emit('claimRejected', { connackCode: r.connack, code: r.code, message: r.message });
        this.#start?.reject(new DeviceError(r.code ?? 'ERR_REFUSED', `claim refused: ${r.message}; still retrying slowly until stop()`));
      } else if (r.code === null) {
        // rate_limited / unavailable are the broker saying "later": the loop backs off, nothing is wrong.
        this.#report(new DeviceError('ERR_DISCONNECTED', `claim not answered: ${r.message}`));
      }
      return r.outcome;
    }
    // Saved first: lost with the process, the set could never be claimed again (its id exists now).
    // A failed save is reported, and the set still used: claiming again would be refused.
    if (this.#credentialsPath) {
      try {
        saveCredentials(this.#credentialsPath, r.credentials);
      } catch (err) {
        this.#report(err);
      }
    }
    this.#creds = r.credentials;
    if (!this.#opts.url) this.#url = r.credentials.brokerUrl;
    this.emit('claimed', { deviceId: this.deviceId });
    return 'claimed';
  }

  /** Connects with the refresh credential, renews, saves, hangs up. */
  async #refreshFlow(): Promise<Outcome> {
    const r = await this.#open(this.#creds!.refreshCredential);
    if (this.#stopped) return r.ok ? this.#discard(r.conn) : 'stopped';
    if (!r.ok) {
      if (r.connack === CONNACK.BAD_USERNAME_OR_PASSWORD || r.connack === CONNACK.NOT_AUTHORIZED) {
        this.#refused(r.connack);
        return 'refused';
      }
      return 'retry';
    }
    try {
      this.emit('renewed', await renewOnRefreshSession(r.conn, this.#renewal));
      return 'refreshed';
    } catch (err) {
      this.#noteRejection(err);
      return err instanceof DeviceError && isTerminal(err.code) ? 'refused' : 'retry';
    }
  }

  /** Runs a token session until the connection closes; false when it never got fully up. */
  async #tokenSession(conn: Conn, via: 'token' | 'refresh'): Promise<boolean> {
    const { client } = conn;
    client.on('message', (topic, payload) => {
      if (!this.#renewal.receive(topic, payload)) this.emit('message', topic, payload);
    });
    let up = false;
    try {
      await subscribeTokenTopics(conn, this.#renewal.topics.filter);
      for (const [filter, qos] of [...this.#subscriptions]) {
        if ((await whileOpen(conn, subscribeGranted(client, filter, qos))) === 128) {
          this.#subscriptions.delete(filter);
          this.#report(new DeviceError('ERR_SUBSCRIBE_REFUSED', `re-subscribing "${filter}" after reconnect was refused`));
        }
      }
      up = client.connected && !this.#stopped;
    } catch (err) {
      if (!(err instanceof DeviceError && err.code === 'ERR_DISCONNECTED')) this.#report(err);
    }
    if (up) {
      this.#session = conn;
      this.#connected = true;
      this.#renewFailures = 0;
      this.#scheduleRenewal();
      this.emit('connected', { via });
      this.#start?.resolve();
    } else {
      void endClient(client, false);
    }
    const reason = await conn.closed;
    this.#connected = false;
    this.#session = null;
    this.#clearRenewTimer();
    this.#renewal.failAll('ERR_DISCONNECTED', 'connection closed before the renewal was answered');
    if (up) this.emit('disconnected', { reason: this.#stopped ? 'stopped' : reason });
    return up;
  }

  /** Opens one MQTT connection (no automatic reconnect: the loop decides what to try next). */
  #open(password: string): Promise<OpenResult> {
    return new Promise((resolve) => {
      const client = mqtt.connect(this.#url, {
        keepalive: 60,
        connectTimeout: 10_000,
        ...this.#opts.mqtt,
        clientId: this.deviceId,
        username: this.deviceId,
        password,
        protocolVersion: 4,
        clean: true,
        reconnectPeriod: 0,
        resubscribe: false,
      });
      this.#conn = client;
      let settled = false;
      let lastError = '';
      const closed = new Promise<string>((res) => client.once('close', () => {
        if (this.#conn === client) this.#conn = null;
        res(lastError || 'connection closed');
      }));
      client.on('error', (err: Error & { code?: unknown }) => {
        lastError = err.message; // MQTT.js messages name codes and addresses, never the password
        if (settled) return;
        settled = true;
        client.end(true);
        resolve({ ok: false, connack: typeof err.code === 'number' ? err.code : null, reason: err.message });
      });
      client.once('connect', () => {
        if (settled) return;
        settled = true;
        resolve({ ok: true, conn: { client, closed } });
      });
      void closed.then((reason) => {
        if (settled) return;
        settled = true;
        resolve({ ok: false, connack: null, reason });
      });
    });
  }

  async #discard(conn: Conn): Promise<Outcome> {
    await endClient(conn.client, false);
    return 'stopped';
  }

  // ---- renewal ---------------------------------------------------------------

  /**
   * Takes a renewal answer: the new access token and, when rotated, the new
   * refresh credential. Saved to the credentials file BEFORE anything uses
   * them: once this device connects with the new refresh credential, the old
   * one is dead, and presenting a dead one revokes the device.
   *
   * If saving fails (full or read-only flash), the new access token is still
   * used in memory (nothing is lost by that), but the old refresh credential is
   * kept: the broker keeps it valid until its successor has been used once, so
   * the device can always refresh with what is on disk. Returns whether the
   * refresh credential was rotated (and taken).
   */
  #adopt(a: RenewAcceptedBody): boolean {
    const old = this.#creds!;
    const next: DeviceCredentials = { ...old, accessToken: a.accessToken, accessTokenExpiresAt: a.accessTokenExpiresAt };
    let rotated = !!a.refreshCredential && a.refreshCredential !== old.refreshCredential;
    if (rotated) {
      next.refreshCredential = a.refreshCredential!;
      next.refreshCredentialExpiresAt = a.refreshCredentialExpiresAt ?? old.refreshCredentialExpiresAt;
    }
    if (this.#credentialsPath) {
      try {
        saveCredentials(this.#credentialsPath, next);
      } catch (err) {
        this.#report(err);
        next.refreshCredential = old.refreshCredential;
        next.refreshCredentialExpiresAt = old.refreshCredentialExpiresAt;
        rotated = false;
      }
    }
    this.#creds = next;
    return rotated;
  }

  #scheduleRenewal(): void {
    this.#clearRenewTimer();
    if (!this.#connected || this.#stopped) return;
    const expiresAtMs = Date.parse(this.#creds!.accessTokenExpiresAt);
    const nowMs = Date.now();
    const delay = renewalDelayMs({
      expiresAtMs, nowMs,
      lifetimeMs: tokenLifetimeMs(this.#creds!.accessToken) ?? Math.max(0, expiresAtMs - nowMs),
      renewAtFraction: this.#opts.renewAtFraction ?? DEFAULT_RENEW_AT_FRACTION,
      jitterFraction: this.#opts.jitterFraction ?? DEFAULT_JITTER_FRACTION,
    });
    this.#renewTimer = setTimeout(() => void this.#renewInBackground(), delay);
  }

  async #renewInBackground(): Promise<void> {
    this.#renewTimer = null;
    const s = this.#session;
    if (!s || !this.#connected) return;
    try {
      const ev = await this.#renewal.request(publishOn(s));
      this.#renewFailures = 0;
      this.emit('renewed', ev);
      this.#scheduleRenewal();
    } catch (err) {
      this.#noteRejection(err);
      const code = err instanceof DeviceError ? err.code : 'ERR_INTERNAL';
      // Terminal: the broker ends the session soon; the connect loop sorts it out.
      if (isTerminal(code) || !this.#connected || this.#session !== s) return;
      // Retry before the token runs out: a third of what is left, growing with
      // each failure, at least 1 s (the broker refills its rate limit slowly).
      this.#renewFailures++;
      const left = Date.parse(this.#creds!.accessTokenExpiresAt) - Date.now();
      const base = Math.min(Math.max(left / 3, 1000), 1000 * 2 ** this.#renewFailures);
      const wait = Math.max(retryLater(code) ? 1000 : 250, base * (0.5 + Math.random() / 2));
      this.#clearRenewTimer();
      this.#renewTimer = setTimeout(() => void this.#renewInBackground(), wait);
    }
  }

  #noteRejection(err: unknown): void {
    if (err instanceof DeviceError && isRenewRejectionCode(err.code)) this.emit('renewRejected', { code: err.code, message: err.message });
  }

  // ---- small helpers ---------------------------------------------------------

  #live(): Conn {
    if (!this.#connected || !this.#session) throw new DeviceError('ERR_NOT_CONNECTED', 'not connected');
    return this.#session;
  }

  #refused(connackCode: number): void {
    this.emit('refused', { connackCode });
    this.#start?.reject(new DeviceError('ERR_REFUSED', `the broker refused the device (CONNACK ${connackCode}); still retrying slowly until stop()`));
  }

  #clearRenewTimer(): void {
    if (this.#renewTimer) clearTimeout(this.#renewTimer);
    this.#renewTimer = null;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wake = () => { this.#wake = null; done(); };
    });
  }

  /** 'error' is only emitted to a listener: an EventEmitter 'error' with none would crash the device's process. */
  #report(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err instanceof Error ? err : new Error(String(err)));
  }
}

const isTerminal = (code: DeviceErrorCode): boolean => isRenewRejectionCode(code) && RENEW_TERMINAL.has(code);
const retryLater = (code: DeviceErrorCode): boolean => isRenewRejectionCode(code) && RENEW_RETRY_LATER.has(code);
