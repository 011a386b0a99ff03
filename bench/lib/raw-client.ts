/**
 * A raw MQTT 3.1.1 load generator: pre-encoded packets (mqtt-packet) written to
 * plain TCP sockets and a minimal frame scanner for what comes back. Much lighter
 * on the load generator than MQTT.js, which matters on two shared cores: the
 * broker, not the client, must be the bottleneck.
 */
import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { now } from './stats.js';

export const DISCONNECT = Buffer.from([0xe0, 0x00]);
export const PINGREQ = Buffer.from([0xc0, 0x00]);

export const PKT = { CONNACK: 2, PUBLISH: 3, PUBACK: 4, SUBACK: 9, PINGRESP: 13 } as const;
/** How long a broker has to answer a PINGREQ or SUBSCRIBE before the run fails. */
const ANSWER_MS = 30_000;

export interface Credentials { readonly clientId: string; readonly username: string; readonly password: string }

export function connectPacket(c: Credentials, keepalive = 0): Buffer {
  return mqttPacket.generate({
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive,
    clientId: c.clientId, username: c.username, password: Buffer.from(c.password, 'utf8'),
  });
}

export function subscribePacket(filter: string, qos: 0 | 1, messageId = 1): Buffer {
  return mqttPacket.generate({ cmd: 'subscribe', messageId, subscriptions: [{ topic: filter, qos }] });
}

/** A PUBLISH frame plus the offset of its packet id (QoS 1), so copies can be re-numbered cheaply. */
export function publishTemplate(topic: string, payload: Buffer, qos: 0 | 1): { frame: Buffer; idOffset: number } {
  const frame = mqttPacket.generate({ cmd: 'publish', topic, payload, qos, messageId: qos ? 1 : undefined, retain: false, dup: false });
  let i = 1;
  while (frame[i]! & 0x80) i++;
  return { frame, idOffset: i + 1 + 2 + Buffer.byteLength(topic) };
}

export type FrameHandler = (type: number, first: number, buf: Buffer, bodyStart: number, end: number) => void;

/** Splits a byte stream into MQTT frames without decoding them. */
export class FrameScanner {
  private rest: Buffer | null = null;
  constructor(private readonly onFrame: FrameHandler) {}
  push(chunk: Buffer): void {
    const b = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    let off = 0;
    for (;;) {
      if (b.length - off < 2) break;
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let complete = false;
      while (i < b.length && i < off + 5) {
        const d = b[i++]!;
        len += (d & 0x7f) * mul;
        mul *= 128;
        if (!(d & 0x80)) { complete = true; break; }
      }
      if (!complete || i + len > b.length) break;
      const first = b[off]!;
      this.onFrame(first >> 4, first, b, i, i + len);
      off = i + len;
    }
    this.rest = off < b.length ? b.subarray(off) : null;
  }
}

/** An open MQTT connection, after a successful CONNACK. */
export class RawClient {
  onFrame: FrameHandler | null = null;
  readonly closed: Promise<number>;
  private readonly scanner = new FrameScanner((t, f, b, s, e) => this.onFrame?.(t, f, b, s, e));
  private constructor(readonly socket: Socket) {
    this.closed = new Promise((r) => socket.once('close', () => r(now())));
  }

  /** Connects and resolves after CONNACK 0; rejects with the return code otherwise, or after `ANSWER_MS` without one. */
  static connect(port: number, connect: Buffer): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ port, host: '127.0.0.1', noDelay: true });
      const client = new RawClient(socket);
      let acked = false;
      // A broker that neither answers nor closes fails the run, never hangs it.
      const timer = setTimeout(() => { if (!acked) { socket.destroy(); reject(new Error(`no CONNACK within ${ANSWER_MS} ms`)); } }, ANSWER_MS);
      socket.on('error', (err) => { if (!acked) reject(err); });
      socket.once('close', () => { clearTimeout(timer); if (!acked) reject(new Error('closed before CONNACK')); });
      client.onFrame = (type, _f, b, s) => {
        if (acked || type !== PKT.CONNACK) return;
        acked = true;
        clearTimeout(timer);
        const rc = b[s + 1]!;
        client.onFrame = null;
        if (rc === 0) resolve(client);
        else { socket.destroy(); reject(Object.assign(new Error(`CONNACK ${rc}`), { rc })); }
      };
      socket.on('data', (d) => client.scanner.push(d));
      socket.write(connect);
    });
  }

  write(b: Buffer): boolean {
    return this.socket.write(b);
  }

  /** Waits for one frame of `type` (the handler is replaced meanwhile); rejects when the connection closes first or after `withinMs`. */
  next(type: number, withinMs = ANSWER_MS): Promise<void> {
    return this.answer((t) => (t === type ? true : undefined), `packet type ${type}`, withinMs).then(() => {});
  }

  /** SUBSCRIBE and its SUBACK's return code; rejects when the connection closes first or after `withinMs`. */
  async subscribe(filter: string, qos: 0 | 1, withinMs = ANSWER_MS): Promise<number> {
    const granted = this.answer((t, b, e) => (t === PKT.SUBACK ? b[e - 1]! : undefined), 'SUBACK', withinMs);
    this.write(subscribePacket(filter, qos));
    return granted;
  }

  /** The first frame `pick` takes (not undefined), as a deadline-bound wait: a broker that closes or never answers fails the run, never hangs it. */
  private answer<T>(pick: (type: number, b: Buffer, end: number) => T | undefined, what: string, withinMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { this.onFrame = null; reject(new Error(`no ${what} within ${withinMs} ms`)); }, withinMs);
      void this.closed.then(() => { clearTimeout(timer); reject(new Error(`connection closed before ${what}`)); });
      this.onFrame = (t, _f, b, _s, e) => {
        const got = pick(t, b, e);
        if (got === undefined) return;
        this.onFrame = null;
        clearTimeout(timer);
        resolve(got);
      };
    });
  }

  /** DISCONNECT, FIN, and wait for the close. */
  async close(): Promise<void> {
    if (!this.socket.destroyed) this.socket.end(DISCONNECT);
    const t = setTimeout(() => this.socket.destroy(), 2000);
    await this.closed;
    clearTimeout(t);
  }
}

export interface ConnectOutcome {
  /** First byte written to last CONNACK, ms. */
  readonly ms: number;
  readonly ok: number;
  readonly refused: number;
  readonly errors: number;
  /** Open connections (when kept), in packet order; null where the connect failed. */
  readonly sockets: (Socket | null)[];
}

/**
 * Connects once per packet with at most `concurrency` CONNECTs in flight
 * (`concurrency >= packets.length`: all started together, a storm). With
 * `keep` false each connection sends DISCONNECT right after its CONNACK.
 * Resolves when every CONNACK (or failure) is in; `drained` when every
 * closed connection has closed too.
 */
export function connectMany(port: number, packets: readonly Buffer[], concurrency: number, keep: boolean): Promise<ConnectOutcome & { drained: Promise<void> }> {
  return new Promise((resolve) => {
    const sockets: (Socket | null)[] = new Array(packets.length).fill(null);
    const closes: Promise<void>[] = [];
    let next = 0;
    let finished = 0;
    let ok = 0;
    let refused = 0;
    let errors = 0;
    const t0 = now();
    const done = () => {
      if (++finished === packets.length) {
        const ms = now() - t0;
        resolve({ ms, ok, refused, errors, sockets, drained: Promise.all(closes).then(() => undefined) });
      } else if (next < packets.length) start(next++);
    };
    const start = (i: number) => {
      const socket = netConnect({ port, host: '127.0.0.1', noDelay: true });
      closes.push(new Promise((r) => socket.once('close', () => r())));
      let settled = false;
      let head: Buffer | null = null;
      const settle = (kind: 'ok' | 'refused' | 'error') => {
        if (settled) return;
        settled = true;
        if (kind === 'ok') ok++; else if (kind === 'refused') refused++; else errors++;
        if (kind === 'ok' && keep) sockets[i] = socket;
        else if (kind === 'ok') socket.end(DISCONNECT);
        else socket.destroy();
        done();
      };
      socket.on('error', () => settle('error'));
      socket.once('close', () => settle('error'));
      socket.on('data', (d: Buffer) => {
        if (settled) return;
        head = head ? Buffer.concat([head, d]) : d;
        if (head.length < 4) return;
        settle(head[0] === 0x20 && head[3] === 0 ? 'ok' : 'refused');
      });
      socket.write(packets[i]!);
    };
    const first = Math.min(concurrency, packets.length);
    for (next = 0; next < first; ) start(next++);
  });
}

/** Closes kept sockets (DISCONNECT + FIN) and waits for them. */
export async function closeAll(sockets: readonly (Socket | null)[]): Promise<void> {
  await Promise.all(sockets.map((s) => (s && !s.destroyed ? new Promise<void>((r) => { s.once('close', () => r()); s.end(DISCONNECT); setTimeout(() => s.destroy(), 3000).unref(); }) : undefined)));
}
