import type { Server } from 'node:http';
import { API_PREFIX, createApi, type Api } from '../api/index.js';
import type { BrokerConfig } from './config.js';
import { isLoopbackHost } from '../util/loopback-host.js';
import { readPemPair } from './listeners.js';
import type { BrokerContext } from './context.js';
import { createOpsHttpServer, dispatchOps, opsHttpLimits, type OpsExtensions, type OpsMount, type OpsTls } from './ops-http-server.js';
import { listSessions, parseSessionQuery } from './session-list.js';

/** One answer of the operations port. */
export interface OpsAnswer {
  readonly status: number;
  readonly type: string;
  readonly body: string;
}

/**
 * The operations port with the operator API mounted under `/api/v1/` (and any
 * `extraMounts`, e.g. the console), over TLS when the config gives a
 * certificate. Bound off loopback (config.ts then requires TLS), `/metrics` and
 * `/sessions` need an operator credential. `close` stops the API's timers.
 */
export function createOpsPort(ctx: BrokerContext, isReady: () => boolean, extraMounts: readonly OpsMount[]): { server: Server; close(): void } {
  const { config } = ctx;
  const tls = opsTls(config);
  const api = createApi({
    reg: ctx.issuer.reg,
    issuer: async () => ctx.issuer,
    sessions: async (q) => listSessions(ctx.sessions, q),
    metricsText: () => ctx.metrics.registry.metrics(),
    secure: tls !== null,
  });
  return { server: createOpsServer(ctx, isReady, opsExtensions(api, config.httpHost, extraMounts), tls), close: () => api.close() };
}

/** The ops port's certificate and key, when the config gives them. */
export function opsTls(config: Pick<BrokerConfig, 'httpTlsCert' | 'httpTlsKey'>): OpsTls | null {
  return config.httpTlsCert === null ? null : { ...readPemPair(config.httpTlsCert, config.httpTlsKey!), paths: `${config.httpTlsCert}, ${config.httpTlsKey}` };
}

/** The API (and `extraMounts`) on an ops port bound to `host`; off loopback, the API also guards /metrics and /sessions. */
export function opsExtensions(api: Api, host: string, extraMounts: readonly OpsMount[]): OpsExtensions {
  return {
    mounts: [{ prefix: `${API_PREFIX}/`, handle: api.handle }, ...extraMounts],
    ...(isLoopbackHost(host) ? {} : { isOperator: api.isOperator }),
  };
}

/**
 * The operations port: `/healthz` (process up), `/readyz` (listening; `degraded`
 * while the registry is unreadable), `/metrics` (Prometheus), `/.well-known/jwks.json` (public keys).
 */
export function createOpsServer(ctx: BrokerContext, isReady: () => boolean, ext: OpsExtensions, tls: OpsTls | null): Server {
  const refused = (limit: string) => ctx.metrics.limitRefusals.inc({ limit: `ops_http_${limit}` });
  return createOpsHttpServer(opsHttpLimits(ctx.config), refused, (req, res) => dispatchOps(ext, req, res, (method, target) => answerOps(ctx, isReady, method, target)), tls);
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
