import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { ApiError } from '../errors/index.js';
import { addressKey } from '../broker/address.js';
import { identify } from './auth.js';
import { readJsonBody } from './body.js';
import { errorAnswer } from './errors.js';
import { fleetTotals, FleetRates } from './fleet-rates.js';
import { LoginThrottle } from './login-throttle.js';
import { openApiDocument } from './openapi.js';
import { authorize, Router } from './router.js';
import { auditRoutes } from './routes/audit.js';
import { claimRoutes } from './routes/claims.js';
import { deviceRoutes } from './routes/devices.js';
import { fleetRoutes } from './routes/fleet.js';
import { grantRoutes } from './routes/grants.js';
import { registryConfigRoutes } from './routes/registry-config.js';
import { sessionRoutes } from './routes/session.js';
import { ok, type ApiAnswer, type ApiDeps, type Caller, type Route } from './types.js';
import { csrfMatches, WebSessions } from './web-sessions.js';

export type { ApiDeps } from './types.js';

export const API_PREFIX = '/api/v1';

/** The API as the ops port mounts it. */
export interface Api {
  /** Answers a request whose path starts with `/api/v1/`. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Whether the request carries a valid operator credential (any role): guards /metrics and /sessions off loopback. */
  isOperator(req: IncomingMessage): Promise<boolean>;
  /** The route table (the OpenAPI test walks it). */
  readonly routes: readonly Route[];
  close(): void;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/**
 * The operator API under `/api/v1` (SPEC "Operators, the API and the console"):
 * JSON in and out, thin routes over operations/ (the calls the CLI makes),
 * bearer tokens or the console's session cookie with a CSRF token.
 */
export function createApi(deps: ApiDeps): Api {
  const web = new WebSessions();
  const throttle = new LoginThrottle();
  const rates = new FleetRates(async () => fleetTotals(await deps.metricsText()));
  const routes: Route[] = [
    ...sessionRoutes(web, throttle), ...deviceRoutes, ...fleetRoutes(rates), ...auditRoutes, ...registryConfigRoutes, ...claimRoutes, ...grantRoutes,
  ];
  let document: Record<string, unknown> | undefined;
  routes.push({
    method: 'GET', path: '/openapi.json', right: 'open', summary: 'This document.', answer: { type: 'object' },
    handle: async () => ok(document ??= openApiDocument(routes, packageVersion())),
  });
  const router = new Router(routes);

  const answer = async (req: IncomingMessage): Promise<ApiAnswer> => {
    try {
      const url = new URL(req.url ?? '/', 'http://api');
      const { route, params } = router.match(req.method ?? 'GET', url.pathname.slice(API_PREFIX.length));
      // A stale cookie must not stop its browser from signing in again: open routes ignore a bad credential.
      const caller: Caller | null = await identify(req.headers, deps.reg, web).catch((err: unknown) => {
        if (route.right === 'open' && err instanceof ApiError) return null;
        throw err;
      });
      const csrf = req.headers['x-csrf-token'];
      authorize(route, caller, (c) => csrfMatches(typeof csrf === 'string' ? csrf : undefined, c.csrfToken ?? ''));
      const body = await readJsonBody(req);
      const address = addressKey(req.socket.remoteAddress ?? '');
      return await route.handle({
        req: { method: route.method, path: url.pathname, query: url.searchParams, headers: req.headers, body, address },
        params, caller, deps, actor: caller ? `operator:${caller.operator.name}` : 'broker',
      });
    } catch (err) {
      return errorAnswer(err);
    }
  };

  return {
    routes,
    handle(req, res) {
      void answer(req).then((a) => {
        const headers: Record<string, string | string[]> = {
          'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...a.headers,
        };
        // A request refused before its body was read (too large, no credential): the rest of it is not waited for.
        if (!req.readableEnded) headers.connection = 'close';
        res.writeHead(a.status, headers);
        res.end(`${JSON.stringify(a.body)}\n`);
      });
    },
    async isOperator(req) {
      try {
        return (await identify(req.headers, deps.reg, web)) !== null;
      } catch (err) {
        if (err instanceof ApiError) return false;
        throw err;
      }
    },
    close() {
      throttle.close();
      rates.close();
    },
  };
}
