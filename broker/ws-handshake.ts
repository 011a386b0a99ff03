import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/** The MQTT WebSocket subprotocols (MQTT 3.1.1 §6; `mqttv3.1` for MQTT 3.1 clients), in order of preference. */
export const MQTT_SUBPROTOCOLS = ['mqtt', 'mqttv3.1'] as const;

export type HandshakeRefusal = 'no_subprotocol' | 'origin';

/**
 * Why a WebSocket upgrade must be refused, or null to go ahead. MQTT 3.1.1 §6
 * requires the `mqtt` subprotocol; a browser page on an origin outside the
 * allow-list (when one is set) is refused, so that a page a user happens to
 * open cannot drive MQTT from the user's network (cross-site WebSocket
 * hijacking). Clients that are not browsers send no Origin and are not
 * concerned (as EMQX's `allow_origin_absence`).
 */
export function handshakeRefusal(req: IncomingMessage, origins: readonly string[]): HandshakeRefusal | null {
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  if (!MQTT_SUBPROTOCOLS.some((p) => offered.includes(p))) return 'no_subprotocol';
  const origin = req.headers.origin;
  if (origins.length > 0 && origin !== undefined && !origins.includes(origin.toLowerCase())) return 'origin';
  return null;
}

const STATUS: Record<HandshakeRefusal, string> = {
  no_subprotocol: '400 Bad Request',
  origin: '403 Forbidden',
};
const BODY: Record<HandshakeRefusal, string> = {
  no_subprotocol: 'MQTT over WebSocket needs the "mqtt" subprotocol\n',
  origin: 'origin not allowed\n',
};

/** Answers a refused upgrade with a plain HTTP error and closes the socket. */
export function refuseUpgrade(socket: Duplex, why: HandshakeRefusal): void {
  const body = BODY[why];
  socket.on('error', () => socket.destroy());
  socket.end(`HTTP/1.1 ${STATUS[why]}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, () => socket.destroy());
}
