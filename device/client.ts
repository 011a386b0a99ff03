import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { Backoff } from './backoff.js';
import { claimOnce, claimSource, type ClaimOptions, type ClaimSource } from './claim.js';
import { checkCredentials, loadCredentials, saveCredentials, type DeviceCredentials } from './credentials-store.js';
import { DeviceError } from './errors.js';
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

export interface RenewedEvent {
  expiresAt: Date;
  roundTripMs: number;
  rotatedRefresh: boolean;
}

export interface DeviceClientEvents {
  connected: (info: { via: 'token' | 'refresh' }) => void;
  /** Provisioned by claim: the credentials set is held (and saved, with `credentialsPath`). */
  claimed: (info: { deviceId: string }) => void;
  /** A claim was refused for good (CONNACK 2, 4, 5: `code` null), or answered with a rejection code. */
  claimRejected: (info: { connackCode: number | null; code: string | null; message: string }) => void;
  disconnected: (info: { reason: string }) => void;
  renewed: (ev: RenewedEvent) => void;
  renewRejected: (info: { code: string; message: string }) => void;
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

/** Rejection codes after which retrying the renewal is pointless. */
const TERMINAL = new Set(['ERR_DEVICE_REVOKED', 'ERR_CREDENTIAL_EXPIRED', 'ERR_REFRESH_REPLAYED', 'ERR_FORBIDDEN_TOPIC']);
/** Codes that come from the broker's `…/rejected` answers. */
const BROKER_CODES = new Set([...TERMINAL, 'ERR_BAD_REQUEST', 'ERR_RATE_LIMITED', 'ERR_UNAVAILABLE', 'ERR_INTERNAL']);
/** Retryable codes that ask the device to wait a little before the next try. */
const BACK_OFF = new Set(['ERR_RATE_LIMITED', 'ERR_UNAVAILABLE']);

const DEFAULT_RENEW_TIMEOUT_MS = 10_000;
/** A token with less than this left is not worth a CONNECT: go straight to the refresh credential. */
const MIN_USABLE_TOKEN_MS = 1_000;
/** Remembered request ids of timed-out renewals, so a late `accepted` is still taken. */
const MAX_LATE = 8;

interface Accepted {
  requestId: string;
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshCredential?: string;
  refreshCredentialExpiresAt?: string;
}

interface Pending {
  resolve(ev: RenewedEvent): void;
  reject(err: DeviceError): void;
  timer: NodeJS.Timeout;
  sentAt: number;
}

interface Conn {
  client: MqttClient;
  /** Resolves (with a reason, never a secret) when the connection has closed. */
  closed: Promise<string>;
}

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
  readonly #topics: { renew: string; accepted: string; rejected: string; filter: string };

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
  readonly #pending = new Map<string, Pending>();
  readonly #late = new Map<string, number>();
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
    const base = `$devices/${this.deviceId}/token`;
    this.#topics = { renew: `${base}/renew`, accepted: `${base}/accepted`, rejected: `${base}/rejected`, filter: `${base}/+` };
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
    this.#failPending('ERR_STOPPED', 'client stopped');
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
      const ev = await this.#requestRenewal(s);
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
      if (r.connack !== 4 && r.connack !== 5) return 'retry'; // network trouble or server unavailable
      if (r.connack === 4) this.#deadToken = creds.accessToken;
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
      if (r.connack === 4 || r.connack === 5) {
        this.#refused(r.connack);
        return 'refused';
      }
      return 'retry';
    }
    const conn = r.conn;
    conn.client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    try {
      const granted = await whileOpen(conn, subscribeGranted(conn.client, this.#topics.filter, 1));
      if (granted === 128) throw new DeviceError('ERR_SUBSCRIBE_REFUSED', 'the broker refused the token topics');
      const ev = await this.#requestRenewal(conn);
      this.emit('renewed', ev);
      return 'refreshed';
    } catch (err) {
      this.#noteRejection(err);
      if (err instanceof DeviceError && TERMINAL.has(err.code)) return 'refused';
      return 'retry';
    } finally {
      await endClient(conn.client, false);
    }
  }

  /** Runs a token session until the connection closes; false when it never got fully up. */
  async #tokenSession(conn: Conn, via: 'token' | 'refresh'): Promise<boolean> {
    const { client } = conn;
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    let up = false;
    try {
      const granted = await whileOpen(conn, subscribeGranted(client, this.#topics.filter, 1));
      if (granted === 128) throw new DeviceError('ERR_SUBSCRIBE_REFUSED', 'the broker refused the token topics');
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
    this.#failPending('ERR_DISCONNECTED', 'connection closed before the renewal was answered');
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

  /** Publishes one renewal request and waits for its answer (matched by a random requestId). */
  #requestRenewal(conn: Conn): Promise<RenewedEvent> {
    const requestId = randomBytes(16).toString('base64url');
    const body = JSON.stringify({ requestId, ...(this.#opts.requestTtlSeconds && { ttlSeconds: this.#opts.requestTtlSeconds }) });
    const timeoutMs = this.#opts.renewTimeoutMs ?? DEFAULT_RENEW_TIMEOUT_MS;
    return new Promise<RenewedEvent>((resolve, reject) => {
      const sentAt = performance.now();
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        this.#late.set(requestId, sentAt);
        if (this.#late.size > MAX_LATE) this.#late.delete(this.#late.keys().next().value!);
        reject(new DeviceError('ERR_RENEW_TIMEOUT', `no answer to the renewal request within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(requestId, { resolve, reject, timer, sentAt });
      conn.client.publish(this.#topics.renew, body, { qos: 1 }, (err) => {
        if (!err) return;
        const p = this.#pending.get(requestId);
        if (!p) return;
        this.#pending.delete(requestId);
        clearTimeout(p.timer);
        p.reject(new DeviceError('ERR_DISCONNECTED', 'connection closed before the renewal request was sent'));
      });
    });
  }

  #onMessage(topic: string, payload: Buffer): void {
    if (topic === this.#topics.accepted) return this.#onAccepted(payload);
    if (topic === this.#topics.rejected) return this.#onRejected(payload);
    if (topic.startsWith('$devices/')) return; // other token topics are not the app's business
    this.emit('message', topic, payload);
  }

  #onRejected(payload: Buffer): void {
    const msg = parseJson(payload);
    const id = msg?.requestId;
    const p = typeof id === 'string' ? this.#pending.get(id) : undefined;
    if (!p || !msg) return; // not an answer to a request we are waiting for
    this.#pending.delete(id as string);
    clearTimeout(p.timer);
    const code = typeof msg.code === 'string' ? msg.code : 'ERR_INTERNAL';
    const message = typeof msg.message === 'string' ? msg.message : 'renewal rejected';
    p.reject(new DeviceError(code, message));
  }

  #onAccepted(payload: Buffer): void {
    const msg = parseJson(payload);
    const id = msg?.requestId;
    if (typeof id !== 'string') return;
    const p = this.#pending.get(id);
    const lateSentAt = this.#late.get(id);
    if (!p && lateSentAt === undefined) return; // not ours (or answered already)
    const answer = asAccepted(msg);
    if (!answer) {
      if (p) {
        this.#pending.delete(id);
        clearTimeout(p.timer);
        p.reject(new DeviceError('ERR_BAD_ANSWER', 'malformed accepted answer'));
      }
      return;
    }
    // Persist first, then use: see #adopt.
    const rotatedRefresh = this.#adopt(answer);
    const ev: RenewedEvent = { expiresAt: new Date(answer.accessTokenExpiresAt), roundTripMs: Math.round(performance.now() - (p?.sentAt ?? lateSentAt!)), rotatedRefresh };
    if (p) {
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.resolve(ev);
    } else {
      // A late answer to a request that timed out: the token is good, keep it.
      this.#late.delete(id);
      if (this.#connected) {
        this.#renewFailures = 0;
        this.emit('renewed', ev);
        this.#scheduleRenewal();
      }
    }
  }

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
  #adopt(a: Accepted): boolean {
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
      const ev = await this.#requestRenewal(s);
      this.#renewFailures = 0;
      this.emit('renewed', ev);
      this.#scheduleRenewal();
    } catch (err) {
      this.#noteRejection(err);
      const code = err instanceof DeviceError ? err.code : 'ERR_INTERNAL';
      // Terminal: the broker ends the session soon; the connect loop sorts it out.
      if (TERMINAL.has(code) || !this.#connected || this.#session !== s) return;
      // Retry before the token runs out: a third of what is left, growing with
      // each failure, at least 1 s (the broker refills its rate limit slowly).
      this.#renewFailures++;
      const left = Date.parse(this.#creds!.accessTokenExpiresAt) - Date.now();
      const base = Math.min(Math.max(left / 3, 1000), 1000 * 2 ** this.#renewFailures);
      const wait = Math.max(BACK_OFF.has(code) ? 1000 : 250, base * (0.5 + Math.random() / 2));
      this.#clearRenewTimer();
      this.#renewTimer = setTimeout(() => void this.#renewInBackground(), wait);
    }
  }

  #noteRejection(err: unknown): void {
    if (err instanceof DeviceError && BROKER_CODES.has(err.code)) this.emit('renewRejected', { code: err.code, message: err.message });
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

  #failPending(code: string, message: string): void {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#pending.delete(id);
      p.reject(new DeviceError(code, message));
    }
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

/** Subscribes and returns the granted QoS; 128 (0x80) when refused, which MQTT.js would otherwise report as an error. */
function subscribeGranted(client: MqttClient, filter: string, qos: 0 | 1): Promise<number> {
  return new Promise((resolve, reject) => {
    client.subscribe(filter, { qos }, (err, granted) => {
      // MQTT.js reports a 0x80 SUBACK as an error carrying the SUBACK packet.
      const code = (err as (Error & { packet?: { granted?: unknown[] } }) | null)?.packet?.granted?.[0];
      if (err && typeof code === 'number' && (code & 0x80) !== 0) return resolve(128);
      if (err) return reject(new DeviceError('ERR_DISCONNECTED', `subscribe failed: ${err.message}`));
      resolve(granted?.[0]?.qos ?? 128);
    });
  });
}

/** Rejects with ERR_DISCONNECTED if the connection closes before `p` settles (MQTT.js may never call back then). */
function whileOpen<T>(conn: Conn, p: Promise<T>): Promise<T> {
  return Promise.race([p, conn.closed.then((): never => { throw new DeviceError('ERR_DISCONNECTED', 'connection closed'); })]);
}

/** Ends an MQTT.js client: gracefully (DISCONNECT) unless `force`; never waits more than 2 s. */
function endClient(client: MqttClient, force: boolean): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { client.end(true); resolve(); }, 2000);
    client.end(force, {}, () => { clearTimeout(t); resolve(); });
  });
}

function parseJson(payload: Buffer): Record<string, unknown> | null {
  try {
    const v = JSON.parse(payload.toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function asAccepted(m: Record<string, unknown> | null): Accepted | null {
  if (!m || typeof m.requestId !== 'string' || typeof m.accessToken !== 'string' || typeof m.accessTokenExpiresAt !== 'string') return null;
  if (Number.isNaN(Date.parse(m.accessTokenExpiresAt))) return null;
  if (m.refreshCredential !== undefined && (typeof m.refreshCredential !== 'string' || typeof m.refreshCredentialExpiresAt !== 'string')) return null;
  return m as unknown as Accepted;
}
