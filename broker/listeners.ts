import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import type { Aedes } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { UsageError } from '../errors/index.js';
import type { BrokerConfig } from './config.js';
import { handshakeRefusal, MQTT_SUBPROTOCOLS, refuseUpgrade, type HandshakeRefusal } from './ws-handshake.js';

export type Listener = NetServer | HttpServer;

/** A port that another process holds; `startBroker` reports every one at once (`portsInUse`). */
export class PortInUseError extends UsageError {
  constructor(readonly what: string, readonly port: number, readonly host: string, readonly flag: string) {
    super(`${what} port ${port} on ${host} (${flag}) is already in use`, 'ERR_CONFIG');
  }
}

/** One line for all the ports that could not be bound, naming the flag of each. */
export function portsInUse(conflicts: readonly PortInUseError[]): UsageError {
  const list = conflicts.map((c) => `${c.what} ${c.port} on ${c.host} (${c.flag})`).join(', ');
  return new UsageError(
    `${conflicts.length === 1 ? 'port' : 'ports'} already in use: ${list}; is another broker running? Stop it, or choose other ports with ${conflicts.map((c) => c.flag).join(', ')} ("off" disables a listener)`,
    'ERR_CONFIG',
  );
}

/**
 * Binds and resolves with the bound port (useful with port 0).
 * @param reusePort bind with SO_REUSEPORT, on this process' own socket (never a
 *   cluster primary's): processes that bind the same port each get a share of
 *   its connections from the kernel (Linux, Node ≥ 22.12; see kernelSharesPorts)
 * @throws PortInUseError when another process holds the port, naming `flag`.
 */
export function listen(server: Listener, port: number, host: string, backlog: number, what: string, flag: string, reusePort = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUseError(what, port, host, flag) : err);
    server.once('error', onError);
    server.listen({ port, host, backlog, ...(reusePort && { reusePort, exclusive: true }) }, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Whether several processes can bind one port with SO_REUSEPORT and have the
 * kernel spread its connections over them: Linux, and Node ≥ 22.12 (the
 * `reusePort` listen option; older lines ignore it).
 */
export function kernelSharesPorts(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return process.platform === 'linux' && (major > 22 || (major === 22 && minor >= 12));
}

/**
 * The kernel's cap on any listen backlog (Linux `net.core.somaxconn`), or null
 * where it cannot be read. A backlog above it is silently cut down to it.
 */
export function kernelBacklogCap(): number | null {
  try {
    const n = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

// A socket refused at accept (socket-limits.ts) is already destroyed here.
export const mqttTcpServer = (aedes: Aedes): NetServer => createNetServer((socket) => { if (!socket.destroyed) aedes.handle(socket); });

export function mqttTlsServer(aedes: Aedes, config: BrokerConfig): NetServer {
  const { cert, key } = readPemPair(config.tlsCert!, config.tlsKey!);
  try {
    // A handshake that never completes is given the CONNECT timeout, not Node's 120 s: it holds a descriptor all along.
    const server = createTlsServer({ cert, key, minVersion: 'TLSv1.2', handshakeTimeout: config.connectTimeoutMs }, (socket) => aedes.handle(socket));
    // Node reports a failed or timed-out handshake here but leaves the socket open (seen on Node 20): close it.
    server.on('tlsClientError', (_err, socket) => socket.destroy());
    return server;
  } catch (err) {
    // Not PEM, a key of another certificate, an encrypted key: OpenSSL's reason, on one line.
    throw new UsageError(`TLS certificate ${config.tlsCert} and key ${config.tlsKey} are not usable: ${(err as Error).message.split('\n')[0]} (see certs/README.md)`, 'ERR_CONFIG');
  }
}

/**
 * A certificate and its key (PEM) for a TLS listener.
 * @throws UsageError `ERR_CONFIG` naming the file that cannot be read
 */
export function readPemPair(certPath: string, keyPath: string): { cert: Buffer; key: Buffer } {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`cannot read TLS certificate or key: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} on the ${what} ${path} (see certs/README.md)`, 'ERR_CONFIG');
    }
  };
  return { cert: read(certPath, 'certificate'), key: read(keyPath, 'key') };
}

/**
 * MQTT over WebSocket, as browsers and MQTT.js `ws://` clients speak it. The
 * upgrade is refused without the `mqtt` subprotocol, or from a browser origin
 * outside `origins` when that list is set (see ws-handshake.ts).
 */
export function mqttWsServer(aedes: Aedes, opts: { maxPayload: number; origins: readonly string[]; connectTimeoutMs: number; onRefused: (why: HandshakeRefusal) => void }): HttpServer {
  // A socket that never completes its upgrade request is closed at the CONNECT timeout (Node's default: 60 s, checked every 30 s).
  const timeouts = { headersTimeout: opts.connectTimeoutMs, requestTimeout: opts.connectTimeoutMs, connectionsCheckingInterval: Math.min(1000, opts.connectTimeoutMs) };
  const http = createHttpServer(timeouts, (_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('MQTT over WebSocket only\n');
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload, handleProtocols: (offered) => MQTT_SUBPROTOCOLS.find((p) => offered.has(p)) ?? false });
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refusal = handshakeRefusal(req, opts.origins);
    if (refusal) {
      opts.onRefused(refusal);
      return refuseUpgrade(socket, refusal);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => stream.destroy());
      aedes.handle(stream, req);
    });
  });
  return http;
}
