import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { addressKey } from './address.js';
import { UsageError } from '../errors/index.js';

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
  tls: OpsTls | null = null,
): Server {
  const idle = limits.idleTimeoutMs;
  // Node checks headersTimeout / requestTimeout on this interval: a fraction of the timeout keeps it close.
  const options = { connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(idle / 4))) };
  const server: Server = tls ? httpsServer(options, tls, handler) : createServer(options, handler);
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

/** The ops port's certificate and key (PEM), when it is served over TLS; `paths` name them in errors. */
export interface OpsTls { readonly cert: Buffer; readonly key: Buffer; readonly paths: string }

function httpsServer(options: object, tls: OpsTls, handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  try {
    return createHttpsServer({ ...options, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, handler) as unknown as Server;
  } catch (err) {
    throw new UsageError(`ops HTTP TLS certificate and key ${tls.paths} are not usable: ${(err as Error).message.split('\n')[0]} (see certs/README.md)`, 'ERR_CONFIG');
  }
}

/**
 * A handler for every path under `prefix` (the API under `/api/v1/`, the
 * console under `/console/`): how an ops port is extended without knowing what
 * it serves. It answers the request itself.
 */
export interface OpsMount {
  readonly prefix: string;
  handle(req: IncomingMessage, res: ServerResponse): void;
}

/** What an ops port adds to its built-in paths. */
export interface OpsExtensions {
  readonly mounts: readonly OpsMount[];
  /**
   * When set (the port is bound off loopback), `/metrics` and `/sessions` answer
   * only a request that it says carries an operator credential (else 401).
   */
  readonly isOperator?: (req: IncomingMessage) => Promise<boolean>;
}

/** The paths that need an operator credential off loopback. */
const GUARDED = new Set(['/metrics', '/sessions']);

/**
 * Serves one request of an ops port: a mount's path goes to the mount; a
 * guarded path needs an operator credential when `isOperator` is set; anything
 * else is `answer(method, target)`, written with no-store.
 */
export function dispatchOps(
  ext: OpsExtensions, req: IncomingMessage, res: ServerResponse,
  answer: (method: string, target: string) => Promise<{ status: number; type: string; body: string }>,
): void {
  const target = req.url ?? '/';
  const path = target.split('?', 1)[0]!;
  const mount = ext.mounts.find((m) => path === m.prefix.replace(/\/$/, '') || path.startsWith(m.prefix));
  if (mount) return mount.handle(req, res);
  const allowed = ext.isOperator && GUARDED.has(path) ? ext.isOperator(req).catch(() => false) : Promise.resolve(true);
  void allowed.then((ok) => (ok
    ? answer(req.method ?? 'GET', target)
    : { status: 401, type: 'application/json', body: '{"error":{"code":"ERR_API_UNAUTHENTICATED","message":"off loopback, this path needs an operator credential (Authorization: Bearer cbop_…)"}}\n' }))
    .then((a) => {
      res.writeHead(a.status, { 'content-type': a.type, 'cache-control': 'no-store' });
      res.end(a.body);
    });
}

/** The caps from the broker's settings. */
export function opsHttpLimits(config: { httpMaxConnections: number; httpMaxConnectionsPerAddress: number; httpIdleTimeoutMs: number }): OpsHttpLimits {
  return { maxConnections: config.httpMaxConnections, maxConnectionsPerAddress: config.httpMaxConnectionsPerAddress, idleTimeoutMs: config.httpIdleTimeoutMs };
}
