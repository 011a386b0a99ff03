// Raw MQTT 3.1.1 over a loopback socket, for the conformance cases
// (test/conformance/): packets built with mqtt-packet's generate, or bytes by
// hand; every reply parsed with its parser; every wait has a deadline.
import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import type { Test } from 'tap';
import { within } from './wait.js';

/** A device that may CONNECT: user name = client id = device id, password = its token. */
export interface Credential {
  readonly deviceId: string;
  readonly accessToken: string;
}

/** A broker to run the cases against: a loopback port and a source of fresh devices (the conformance profile). */
export interface ConformanceTarget {
  readonly label: string;
  readonly port: number;
  /** A device no earlier case used. */
  device(): Promise<Credential>;
}

const WAIT_MS = 10_000;

/** One connection: what it received, in order, and whether the broker closed it. */
export class RawConnection {
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  private readonly inbox: Packet[] = [];
  private wake: (() => void) | null = null;
  private isClosed = false;

  private constructor(private readonly socket: Socket) {
    this.parser.on('packet', (p: Packet) => { this.inbox.push(p); this.poke(); });
    this.parser.on('error', () => socket.destroy());
    socket.on('data', (d: Buffer) => this.parser.parse(d));
    socket.on('error', () => {});
    socket.on('close', () => { this.isClosed = true; this.poke(); });
  }

  static open(port: number): Promise<RawConnection> {
    return within(`a socket to 127.0.0.1:${port}`, new Promise((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => resolve(new RawConnection(s)));
      s.once('error', reject);
    }));
  }

  send(packet: Packet | Buffer): void {
    this.socket.write(Buffer.isBuffer(packet) ? packet : mqttPacket.generate(packet, { protocolVersion: 4 }));
  }

  /** The next packet the broker sends; fails on a close or after the deadline. */
  async next(what = 'a packet', ms = WAIT_MS): Promise<Packet> {
    await within(what, this.waitFor(() => this.inbox.length > 0 || this.isClosed), ms);
    const p = this.inbox.shift();
    if (!p) throw new Error(`the broker closed the connection while the case waited for ${what}`);
    return p;
  }

  /** Packets read ahead of their turn, handed back to the front of the queue in order. */
  putBack(packets: readonly Packet[]): void {
    this.inbox.unshift(...packets);
  }

  /** The next packet, which must be a `cmd` (its fields returned for more checks). */
  async expect<C extends Packet['cmd']>(cmd: C, ms = WAIT_MS): Promise<Extract<Packet, { cmd: C }>> {
    const p = await this.next(cmd.toUpperCase(), ms);
    if (p.cmd !== cmd) throw new Error(`expected ${cmd.toUpperCase()}, got ${describe(p)}`);
    return p as Extract<Packet, { cmd: C }>;
  }

  /** The broker closes the connection, sending nothing more first. */
  async expectClose(ms = WAIT_MS): Promise<void> {
    await within('the broker to close the connection', this.waitFor(() => this.isClosed || this.inbox.length > 0), ms);
    const p = this.inbox.shift();
    if (p) throw new Error(`expected the connection to be closed, got ${describe(p)}`);
  }

  /**
   * Proof that nothing else arrived before a sentinel: sends PINGREQ and
   * returns every packet that came before its PINGRESP.
   */
  async drainUntilPing(ms = WAIT_MS): Promise<Packet[]> {
    this.send({ cmd: 'pingreq' });
    const before: Packet[] = [];
    for (;;) {
      const p = await this.next('PINGRESP (the sentinel)', ms);
      if (p.cmd === 'pingresp') return before;
      before.push(p);
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  end(): void {
    this.socket.destroy();
  }

  private waitFor(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => {
      const prev = this.wake;
      this.wake = () => { prev?.(); if (check()) resolve(); };
    });
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

function describe(p: Packet): string {
  return `${p.cmd.toUpperCase()} ${JSON.stringify(p, (k, v) => (k === 'payload' && v ? String(Buffer.from(v as Buffer)) : v))}`;
}

/** A CONNECT (3.1.1) for `cred`, its fields overridable. */
export function connectPacket(cred: Credential, over: Partial<Extract<Packet, { cmd: 'connect' }>> = {}): Packet {
  return { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: cred.deviceId, username: cred.deviceId, password: Buffer.from(cred.accessToken), ...over } as Packet;
}

/** The context a case runs in. */
export interface CaseContext {
  readonly t: Test;
  readonly target: ConformanceTarget;
  device(): Promise<Credential>;
  /** A socket, closed when the case ends. */
  open(): Promise<RawConnection>;
  /** A socket with an accepted CONNECT (CONNACK 0 checked); the CONNACK's session present returned with it. */
  session(cred: Credential, over?: Partial<Extract<Packet, { cmd: 'connect' }>>): Promise<RawConnection & { sessionPresent: boolean }>;
}

/** One conformance case: the normative statements it checks, and how. */
export interface ConformanceCase {
  /** [MQTT-x.y.z-n] ids (or a section, `§4.7.1.3`) this case checks. */
  readonly ids: readonly string[];
  readonly title: string;
  /** Where credbroker answers otherwise than plain MQTT would, or picks one of several allowed answers: what and why. */
  readonly credbroker?: string;
  /** How often the case runs (a race: each run must pass). */
  readonly repeat?: number;
  run(c: CaseContext): Promise<void>;
}

/** Runs every case as its own subtest, named by its ids, against `target`. */
export async function runCases(t: Test, target: ConformanceTarget, cases: readonly ConformanceCase[]): Promise<void> {
  for (const cc of cases) {
    const name = `[${cc.ids.join(' ')}] ${cc.title}${cc.credbroker ? ` (credbroker: ${cc.credbroker})` : ''}`;
    await t.test(name, async (t) => {
      for (let i = 0; i < (cc.repeat ?? 1); i++) {
        const conns: RawConnection[] = [];
        const open = async () => { const c = await RawConnection.open(target.port); conns.push(c); return c; };
        try {
          await cc.run({
            t, target, open, device: () => target.device(),
            async session(cred, over = {}) {
              const c = await open();
              c.send(connectPacket(cred, over));
              const ack = await c.expect('connack');
              if (ack.returnCode !== 0) throw new Error(`CONNECT of ${cred.deviceId} refused: CONNACK ${ack.returnCode}`);
              return Object.assign(c, { sessionPresent: ack.sessionPresent });
            },
          });
        } finally {
          for (const c of conns) c.end();
        }
      }
      t.pass(cc.repeat ? `${cc.repeat} runs` : 'as specified');
    });
  }
}

/** Fixed header + body, the remaining length encoded as MQTT does. */
export function frame(first: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do { let b = n % 128; n = Math.floor(n / 128); if (n > 0) b |= 0x80; len.push(b); } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), body]);
}

const str = (s: string | Buffer) => { const b = Buffer.from(s); return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]); };

/**
 * A CONNECT built byte by byte, for the forms mqtt-packet's generate refuses to
 * write: `flags` is the connect flags byte as sent, and each field present is
 * written whatever the flags say.
 */
export function handConnect(f: { name?: string; level?: number; flags: number; clientId: string; will?: { topic: string; payload: string }; username?: string; password?: string }): Buffer {
  const parts = [str(f.name ?? 'MQTT'), Buffer.from([f.level ?? 4, f.flags, 0, 60]), str(f.clientId)];
  if (f.will) parts.push(str(f.will.topic), str(f.will.payload));
  if (f.username !== undefined) parts.push(str(f.username));
  if (f.password !== undefined) parts.push(str(f.password));
  return frame(0x10, Buffer.concat(parts));
}

/** Connect flags (§3.1.2.3). */
export const FLAG = { clean: 0x02, will: 0x04, willQos1: 0x08, willQos2: 0x10, willRetain: 0x20, password: 0x40, username: 0x80 } as const;
