import type { Client } from 'aedes';

/** The endpoints of a TCP connection, as a socket (raw or TLS) exposes them. */
export interface Endpoints {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
}

/** The socket under an MQTT client's connection: its TCP or TLS socket, or the HTTP socket a WebSocket was upgraded from. */
export function peerSocket(client: Client): Endpoints {
  const conn = client.conn as Endpoints & { _socket?: Endpoints };
  return client.req?.socket ?? (conn.remoteAddress !== undefined ? conn : conn._socket ?? conn);
}

/** The peer address of an MQTT client, whatever the transport (TCP, TLS, WebSocket). */
export function remoteAddress(client: Client): string {
  const address = peerSocket(client).remoteAddress ?? 'unknown';
  // On a dual-stack listener (--host ::) an IPv4 peer shows as ::ffff:a.b.c.d: the same
  // peer must have the same address (throttles, logs, audit) whichever --host is used.
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
