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
  return plainIpv4(peerSocket(client).remoteAddress ?? 'unknown');
}

/**
 * On a dual-stack listener (--host ::) an IPv4 peer shows as ::ffff:a.b.c.d: the same
 * peer must have the same address (throttles, logs, audit) whichever --host is used.
 */
function plainIpv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * What a per-address limit counts: an IPv4 address, or the /64 prefix of an IPv6 one.
 * One host or subscriber is handed a whole /64 (RFC 6177), so counting IPv6
 * addresses one by one would let it through 2^64 times.
 */
export function addressKey(address: string): string {
  const plain = plainIpv4(address);
  if (!plain.includes(':')) return plain;
  const bare = plain.split('%')[0]!; // zone index of a link-local address
  const [head = '', tail] = bare.split('::');
  const groups = head ? head.split(':') : [];
  if (tail !== undefined && groups.length < 4) {
    const rest = tail ? tail.split(':') : [];
    groups.push(...Array<string>(Math.max(0, 8 - groups.length - rest.length)).fill('0'), ...rest);
  }
  return `${groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':')}::/64`;
}
