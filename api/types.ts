import type { IncomingHttpHeaders } from 'node:http';
import type { SessionPage } from '../broker/session-list.js';
import type { Issuer } from '../provisioning/issuer.js';
import type { Actor, Operator, Registry } from '../registry/index.js';
import type { Right } from '../operators/roles.js';

/** One API request, read and parsed: what a route sees. */
export interface ApiRequest {
  readonly method: string;
  /** The path under `/api/v1` (`/devices/pump-1`). */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** The parsed JSON body (undefined when none was sent). */
  readonly body: unknown;
  /** The peer's address, for login throttling. */
  readonly address: string;
}

export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string | string[]>>;
}

/** What the API needs from the process that serves it (a broker, or a cluster node's primary). */
export interface ApiDeps {
  readonly reg: Registry;
  /** The signing keys as they are now (the broker reloads them after a rotation): grants are signed with them. */
  issuer(): Promise<Issuer>;
  /** A page of live sessions (one process: its own; a node: its workers' merged). */
  sessions(q: { limit: number; after?: string; device?: string }): Promise<SessionPage>;
  /** The Prometheus text of the port's /metrics: the fleet summary reads its counters. */
  metricsText(): Promise<string>;
  /** Served over TLS: the session cookie is then `Secure`. */
  readonly secure: boolean;
}

/** Who is calling, and how they proved it. */
export interface Caller {
  readonly operator: Operator;
  readonly via: 'token' | 'cookie';
  /** The cookie session's CSRF token (cookie callers only). */
  readonly csrfToken?: string;
  /** The cookie session's id (cookie callers only: signing out ends it). */
  readonly sessionId?: string;
}

export interface RouteContext {
  readonly req: ApiRequest;
  readonly params: Readonly<Record<string, string>>;
  /** Null only on routes open to anyone (signing in, the OpenAPI document). */
  readonly caller: Caller | null;
  /** How the route's work is audited: `operator:NAME`. */
  readonly actor: Actor;
  readonly deps: ApiDeps;
}

/** A JSON Schema fragment, as the OpenAPI document shows it. */
export type Schema = Record<string, unknown>;

export interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** Under `/api/v1`, with `{name}` parameters (`/devices/{id}/revoke`). */
  readonly path: string;
  /** The right the caller's role must hold; `open`: no credential needed. */
  readonly right: Right | 'open';
  readonly summary: string;
  /** Query parameters (documented in OpenAPI; unknown ones are refused). */
  readonly query?: Readonly<Record<string, string>>;
  /** The JSON body's schema, when the route takes one. */
  readonly body?: Schema;
  /** The success answer's schema. */
  readonly answer: Schema;
  handle(ctx: RouteContext): Promise<ApiAnswer>;
}

export const ok = (body: unknown, status = 200): ApiAnswer => ({ status, body });
