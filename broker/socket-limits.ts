import type { Server, Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { addressKey, type Endpoints } from './address.js';

/** The four-tuple that names one TCP connection: the same from the raw socket and from a TLS socket over it. */
const keyOf = (s: Endpoints) => `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;

interface Pending {
  readonly socket: Socket;
  readonly address: string;
  /** The four-tuple, for a socket accepted by a TLS listener only (see `byTuple`). */
  readonly key: string | null;
  /** Its 'close' listener, removed when it is forgotten: an authenticated connection keeps neither for its life. */
  readonly onClose: () => void;
}

export type UnauthenticatedLimit = 'per_address' | 'total';

/**
 * Caps the sockets that have not authenticated yet (issue 10 #4: 19,980 idle
 * sockets from 500 addresses took every file descriptor), counted from the TCP
 * accept (before TLS or the WebSocket upgrade) until the session is ready.
 * - Per address (an IPv6 /64 counts as one): a newcomer beyond `maxPerAddress` is reset at once.
 * - In total: at `max`, the *oldest* pending socket is reset to make room, not
 *   the newcomer. A device completes CONNECT in milliseconds while a flood's
 *   sockets sit idle, so a device is pushed out only if `max` newer sockets
 *   arrive before its CONNACK; refusing newcomers instead would shut every
 *   device out for as long as the flood lasts.
 * The total stays a share of the descriptor limit, so that the rest is left to
 * authenticated devices and the registry.
 */
export class UnauthenticatedSockets {
  /**
   * By the accepted socket, in order of arrival: the first entry is the oldest.
   * An MQTT client over TCP holds that very socket, and one over WebSocket holds
   * it as its upgrade request's socket: found by identity, no system call.
   */
  private readonly pending = new Map<Endpoints, Pending>();
  /** Sockets of TLS listeners by four-tuple too: the client holds the TLS socket over the accepted one. */
  private readonly byTuple = new Map<string, Pending>();
  private readonly perAddress = new Map<string, number>();

  constructor(
    readonly max: number,
    readonly maxPerAddress: number,
    private readonly onLimit: (limit: UnauthenticatedLimit, address: string) => void,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** Counts every connection `server` accepts, before its own handler (TLS, HTTP upgrade, MQTT) sees it. */
  guard<T extends Server>(server: T): T {
    const tls = server instanceof TlsServer;
    server.prependListener('connection', (socket: Socket) => {
      if (!this.admit(socket, tls)) socket.resetAndDestroy();
    });
    return server;
  }

  /**
   * At accept. False: the caller resets the socket. May reset the oldest pending socket to make room.
   * `tls`: accepted by a TLS listener, so also found by its four-tuple (a system call for the local end).
   */
  admit(socket: Socket, tls = false): boolean {
    if (socket.remoteAddress === undefined) return false; // already gone
    const address = addressKey(socket.remoteAddress);
    const n = this.perAddress.get(address) ?? 0;
    if (n >= this.maxPerAddress) {
      this.onLimit('per_address', address);
      return false;
    }
    if (this.pending.size >= this.max) {
      const oldest = this.pending.values().next().value!;
      this.forget(oldest);
      oldest.socket.resetAndDestroy();
      this.onLimit('total', oldest.address);
    }
    const entry: Pending = { socket, address, key: tls ? keyOf(socket) : null, onClose: () => this.forget(entry) };
    this.pending.set(socket, entry);
    if (entry.key !== null) this.byTuple.set(entry.key, entry);
    this.perAddress.set(address, n + 1);
    socket.on('close', entry.onClose);
    return true;
  }

  /** The connection over `conn` (the raw socket, or a TLS socket over it) has authenticated: it no longer counts. */
  authenticated(conn: Endpoints): void {
    const entry = this.pending.get(conn) ?? (this.byTuple.size > 0 ? this.byTuple.get(keyOf(conn)) : undefined);
    if (entry) this.forget(entry);
  }

  private forget(entry: Pending): void {
    if (this.pending.get(entry.socket) !== entry) return;
    this.pending.delete(entry.socket);
    entry.socket.removeListener('close', entry.onClose);
    if (entry.key !== null) this.byTuple.delete(entry.key);
    const n = (this.perAddress.get(entry.address) ?? 1) - 1;
    if (n > 0) this.perAddress.set(entry.address, n);
    else this.perAddress.delete(entry.address);
  }
}
