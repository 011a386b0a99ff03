import type { Client } from 'aedes';

export type Transport = 'tcp' | 'tls' | 'ws';

/**
 * Which listener a client came through: the WebSocket listener hands aedes the
 * upgrade request (`client.req`), a TLS socket is `encrypted`, anything else is TCP.
 */
export function transportOf(client: Client): Transport {
  if (client.req) return 'ws';
  return (client.conn as { encrypted?: boolean }).encrypted ? 'tls' : 'tcp';
}
