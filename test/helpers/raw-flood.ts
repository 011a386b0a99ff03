// Raw-socket attackers for the wire-limit tests: a session that stays open
// after its CONNACK, and floods that write as fast as the peer takes bytes
// until it closes the connection or a byte budget is spent.
import net from 'node:net';
import mqttPacket from 'mqtt-packet';
import WebSocket from 'ws';

export interface FloodResult {
  /** Bytes handed to the socket before it closed (or the budget ran out). */
  readonly sent: number;
  /** True when the peer closed the connection before the budget was spent. */
  readonly closedByPeer: boolean;
  readonly ms: number;
}

/** The remaining-length varint of MQTT (1–4 bytes). */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** A fixed header announcing `remaining` bytes of body for packet type byte `first` (0x10 CONNECT, 0x30 PUBLISH…). */
export const fixedHeader = (first: number, remaining: number) => Buffer.concat([Buffer.from([first]), varint(remaining)]);

/** A raw TCP connection whose CONNECT was accepted (CONNACK 0); rejects otherwise. */
export function rawSession(port: number, connect: Buffer): Promise<{ sock: net.Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const closed = new Promise<number>((r) => sock.once('close', () => r(Date.now())));
    sock.on('error', () => {});
    sock.on('data', (d) => parser.parse(d));
    parser.once('packet', (p) => {
      const code = (p as { returnCode?: number }).returnCode;
      if (p.cmd === 'connack' && code === 0) resolve({ sock, closed });
      else { sock.destroy(); reject(new Error(`expected CONNACK 0, got ${p.cmd} ${code}`)); }
    });
    void closed.then(() => reject(new Error('closed before CONNACK')));
    sock.on('connect', () => sock.write(connect));
  });
}

/**
 * Writes `head`, then `budget` bytes of filler in `chunk`-byte writes, each
 * after the socket took the previous one (backpressure), until the peer
 * closes or the budget is spent.
 */
export function floodTcp(sock: net.Socket, head: Buffer, budget: number, chunk = 64 * 1024): Promise<FloodResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const filler = Buffer.alloc(chunk, 0x61);
    let sent = 0;
    let done = false;
    const finish = (closedByPeer: boolean) => {
      if (done) return;
      done = true;
      resolve({ sent, closedByPeer, ms: Date.now() - t0 });
    };
    sock.once('close', () => finish(true));
    sock.on('error', () => finish(true));
    const pump = () => {
      while (!done && !sock.destroyed) {
        if (sent >= budget) { finish(false); return; }
        sent += chunk;
        if (!sock.write(filler)) { sock.once('drain', pump); return; }
      }
    };
    sent += head.length;
    sock.write(head);
    pump();
  });
}

/** Opens a raw TCP connection and floods it (see `floodTcp`). */
export function floodTcpFresh(port: number, head: Buffer, budget: number, chunk?: number): Promise<FloodResult> {
  const sock = net.connect({ port, host: '127.0.0.1' });
  sock.on('error', () => {});
  return new Promise((resolve) => sock.once('connect', () => resolve(floodTcp(sock, head, budget, chunk))));
}

/**
 * MQTT over WebSocket: `head` in one frame, then `budget` bytes of filler in
 * frames of `frame` bytes, each sent once the socket has flushed the previous
 * ones (so the attacker, not its own buffer, is what the broker sees).
 */
export function floodWs(url: string, head: Buffer, budget: number, frame = 4096): Promise<FloodResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const ws = new WebSocket(url, 'mqtt');
    const filler = Buffer.alloc(frame, 0x61);
    let sent = 0;
    let done = false;
    const finish = (closedByPeer: boolean) => {
      if (done) return;
      done = true;
      ws.terminate();
      resolve({ sent, closedByPeer, ms: Date.now() - t0 });
    };
    ws.on('close', () => finish(true));
    ws.on('error', () => finish(true));
    const pump = () => {
      // Up to 64 frames per turn, then wait for them to leave.
      for (let i = 0; i < 64 && !done; i++) {
        if (sent >= budget) { finish(false); return; }
        sent += frame;
        ws.send(filler);
      }
      if (!done) setImmediate(waitFlushed);
    };
    const waitFlushed = () => {
      if (done) return;
      if (ws.bufferedAmount > 0) setTimeout(waitFlushed, 1);
      else pump();
    };
    ws.on('open', () => {
      sent += head.length;
      ws.send(head);
      pump();
    });
  });
}

/**
 * Writes `frame` again and again, as fast as the peer takes it, for at least
 * `minMs` and until `minFrames` are written, but no longer than `maxMs` (a slow
 * host then writes less: the caller checks the count); resolves with the number written.
 */
export function pumpFrames(sock: net.Socket, frame: Buffer, opts: { minMs: number; minFrames: number; maxMs: number }): Promise<number> {
  return new Promise((resolve) => {
    const start = Date.now();
    let n = 0;
    const batch = Buffer.concat(Array.from({ length: Math.max(1, Math.floor(256 * 1024 / frame.length)) }, () => frame));
    const per = batch.length / frame.length;
    const finish = () => { sock.off('close', finish); resolve(n); };
    sock.once('close', finish);
    const done = () => {
      const ms = Date.now() - start;
      return ms >= opts.maxMs || (ms >= opts.minMs && n >= opts.minFrames);
    };
    const pump = () => {
      while (!sock.destroyed) {
        if (done()) { finish(); return; }
        n += per;
        if (!sock.write(batch)) { sock.once('drain', pump); return; }
      }
    };
    pump();
  });
}
