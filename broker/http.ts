import { createServer, type Server } from 'node:http';
import type { BrokerContext } from './context.js';
import { listSessions, parseSessionQuery } from './session-list.js';

/**
 * The operations port: `/healthz` (process up), `/readyz` (listening and registry
 * readable), `/metrics` (Prometheus), `/.well-known/jwks.json` (public keys).
 */
export function createOpsServer(ctx: BrokerContext, isReady: () => boolean): Server {
  return createServer((req, res) => {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    // The path alone, parsed against a fixed base: an absolute or odd request target names no other host.
    const url = URL.canParse(`http://ops${req.url ?? '/'}`) ? new URL(`http://ops${req.url ?? '/'}`) : null;
    if (!url) return send(400, 'text/plain', 'bad request\n');
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    switch (path) {
      case '/healthz':
        return send(200, 'application/json', '{"status":"ok"}\n');
      case '/readyz': {
        let ok = isReady();
        try {
          ctx.issuer.reg.changes.latest();
        } catch {
          ok = false;
        }
        return send(ok ? 200 : 503, 'application/json', `${JSON.stringify({ status: ok ? 'ready' : 'not ready', sessions: ctx.sessions.size })}\n`);
      }
      case '/metrics':
        ctx.metrics.registry.metrics().then(
          (text) => send(200, ctx.metrics.registry.contentType, text),
          () => send(500, 'text/plain', 'metrics unavailable\n'),
        );
        return;
      case '/sessions': {
        const q = parseSessionQuery(url.searchParams);
        if (typeof q === 'string') return send(400, 'application/json', `${JSON.stringify({ error: q })}\n`);
        return send(200, 'application/json', `${JSON.stringify(listSessions(ctx.sessions, q))}\n`);
      }
      case '/.well-known/jwks.json':
        return send(200, 'application/json', `${JSON.stringify(ctx.issuer.keyring.jwks())}\n`);
      default:
        return send(404, 'text/plain', 'not found\n');
    }
  });
}
