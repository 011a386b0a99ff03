import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { addressKey } from './address.js';

/** Caps of an operations port (`httpMaxConnections`, `httpMaxConnectionsPerAddress`, `httpIdleTimeoutMs`). */
export interface OpsHttpLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly idleTimeoutMs: number;
}

export type OpsHttpRefusal = 'per_address' | 'total';

/**
 * An HTTP server for an operations port (a broker's, or a cluster node's) that
 * one client cannot exhaust (issue 19 #10: 19,800 idle sockets from one address
 * were held). A connection beyond the per-address cap (an IPv6 /64 counts as one)
 * or the total cap is reset at accept and counted (`onRefused`); no request takes
 * longer than the idle timeout to arrive, and a socket silent that long (before
 * its first request, between keep-alive requests) is closed.
 */
export function createOpsHttpServer(
  limits: OpsHttpLimits,
  onRefused: (limit: OpsHttpRefusal) => void,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Server {
  const idle = limits.idleTimeoutMs;
  // Node checks headersTimeout / requestTimeout on this interval: a fraction of the timeout keeps it close.
  const server = createServer({ connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(idle / 4))) }, handler);
  server.headersTimeout = idle;
  server.requestTimeout = idle;
  server.keepAliveTimeout = idle;
  // Inactivity of the socket itself: a client that connects and never sends a byte.
  server.setTimeout(idle);
  const perAddress = new Map<string, number>();
  let open = 0;
  server.prependListener('connection', (socket: Socket) => {
    if (socket.remoteAddress === undefined) return; // already gone
    const address = addressKey(socket.remoteAddress);
    const n = perAddress.get(address) ?? 0;
    const refused: OpsHttpRefusal | null = n >= limits.maxConnectionsPerAddress ? 'per_address' : open >= limits.maxConnections ? 'total' : null;
    if (refused) {
      onRefused(refused);
      socket.resetAndDestroy();
      return;
    }
    open++;
    perAddress.set(address, n + 1);
    socket.once('close', () => {
      open--;
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    });
  });
  return server;
}

/** The caps from the broker's settings. */
export function opsHttpLimits(config: { httpMaxConnections: number; httpMaxConnectionsPerAddress: number; httpIdleTimeoutMs: number }): OpsHttpLimits {
  return { maxConnections: config.httpMaxConnections, maxConnectionsPerAddress: config.httpMaxConnectionsPerAddress, idleTimeoutMs: config.httpIdleTimeoutMs };
}
