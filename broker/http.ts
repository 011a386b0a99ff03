import type { Server } from 'node:http';
import { consoleMount, isConsoleRequest } from './console-assets.js';
import type { BrokerContext } from './context.js';
import { createOpsHttpServer, opsHttpLimits } from './ops-http-server.js';
import { listSessions, parseSessionQuery } from './session-list.js';

/** One answer of the operations port. */
export interface OpsAnswer {
  readonly status: number;
  readonly type: string;
  readonly body: string;
}

/**
 * The operations port: `/healthz` (process up), `/readyz` (listening; `degraded`
 * while the registry is unreadable), `/metrics` (Prometheus), `/.well-known/jwks.json` (public keys).
 */
export function createOpsServer(ctx: BrokerContext, isReady: () => boolean): Server {
  const refused = (limit: string) => ctx.metrics.limitRefusals.inc({ limit: `ops_http_${limit}` });
  const consolePages = consoleMount();
  return createOpsHttpServer(opsHttpLimits(ctx.config), refused, (req, res) => {
    if (isConsoleRequest(req.url ?? '/')) return consolePages.handle(req, res);
    void answerOps(ctx, isReady, req.method ?? 'GET', req.url ?? '/').then((a) => {
      res.writeHead(a.status, { 'content-type': a.type, 'cache-control': 'no-store' });
      res.end(a.body);
    });
  });
}

/**
 * The answer to one request of the operations port (also asked over IPC by a
 * cluster's primary, which serves the node's port). Never rejects.
 */
export async function answerOps(ctx: BrokerContext, isReady: () => boolean, method: string, target: string): Promise<OpsAnswer> {
  const send = (status: number, type: string, body: string): OpsAnswer => ({ status, type, body });
  // The path alone, parsed against a fixed base: an absolute or odd request target names no other host.
  const url = URL.canParse(`http://ops${target}`) ? new URL(`http://ops${target}`) : null;
  if (!url) return send(400, 'text/plain', 'bad request\n');
  const path = url.pathname;
  if (method !== 'GET' && method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
  switch (path) {
    case '/healthz':
      return send(200, 'application/json', '{"status":"ok"}\n');
    case '/readyz': {
      const listening = isReady();
      const registry = await ctx.issuer.reg.changes.latest().then(() => true, () => false);
      // Registry unreachable (a database outage): still 200, since live sessions and CONNECTs with a
      // token need no database, and an outage every node shares must not take the whole fleet
      // out of a load balancer. `degraded` says renewals and refresh CONNECTs are refused meanwhile.
      const status = !listening ? 'not ready' : registry ? 'ready' : 'degraded';
      return send(listening ? 200 : 503, 'application/json', `${JSON.stringify({ status, ...(registry ? {} : { registry: 'unavailable' }), sessions: ctx.sessions.size })}\n`);
    }
    case '/metrics':
      try {
        return send(200, ctx.metrics.registry.contentType, await ctx.metrics.registry.metrics());
      } catch {
        return send(500, 'text/plain', 'metrics unavailable\n');
      }
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
}
