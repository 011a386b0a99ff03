import type { Client } from 'aedes';

/** The peer address of an MQTT client, whatever the transport (TCP, TLS, WebSocket). */
export function remoteAddress(client: Client): string {
  const conn = client.conn as { remoteAddress?: string; _socket?: { remoteAddress?: string } };
  return client.req?.socket?.remoteAddress ?? conn.remoteAddress ?? conn._socket?.remoteAddress ?? 'unknown';
}
