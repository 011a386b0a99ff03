import { ApiError } from '../errors/index.js';
import { hasRight } from '../operators/roles.js';
import type { Caller, Route } from './types.js';

interface Compiled { readonly route: Route; readonly pattern: RegExp; readonly names: string[] }

/** A parameter is one path segment: `{id}` matches what a device id, claim or grant name can be. */
const SEGMENT = '([A-Za-z0-9._:-]{1,128})';

/**
 * The route table: finds the route for a method and path, with its parameters.
 * An unknown path is 404, a known path with another method 405 (both JSON).
 */
export class Router {
  private readonly compiled: Compiled[];

  constructor(readonly routes: readonly Route[]) {
    this.compiled = routes.map((route) => {
      const names: string[] = [];
      const source = route.path.replace(/[.]/g, '\\.').replace(/\{(\w+)\}/g, (_m, name: string) => { names.push(name); return SEGMENT; });
      return { route, pattern: new RegExp(`^${source}$`), names };
    });
  }

  /** @throws ApiError `ERR_API_NO_ROUTE` | `ERR_API_METHOD` */
  match(method: string, path: string): { route: Route; params: Record<string, string> } {
    let pathKnown = false;
    for (const c of this.compiled) {
      const m = c.pattern.exec(path);
      if (!m) continue;
      pathKnown = true;
      if (c.route.method !== method) continue;
      return { route: c.route, params: Object.fromEntries(c.names.map((n, i) => [n, m[i + 1]!])) };
    }
    if (pathKnown) throw new ApiError('ERR_API_METHOD', `${method} is not allowed on ${path.slice(0, 200)}`);
    throw new ApiError('ERR_API_NO_ROUTE', `no API route ${path.slice(0, 200)} (see /api/v1/openapi.json)`);
  }
}

/**
 * Whether `caller` may run `route`. A state-changing request made with the
 * session cookie must echo the session's CSRF token: a page on another site
 * can make the browser send the cookie, never read the token.
 * @throws ApiError `ERR_API_UNAUTHENTICATED` (no credential) | `ERR_API_FORBIDDEN` (role) | `ERR_API_CSRF`
 */
export function authorize(route: Route, caller: Caller | null, csrfOk: (caller: Caller) => boolean): void {
  if (route.right === 'open') return;
  if (!caller) throw new ApiError('ERR_API_UNAUTHENTICATED', 'sign in (POST /api/v1/session) or send Authorization: Bearer cbop_…');
  if (!hasRight(caller.operator.role, route.right)) {
    throw new ApiError('ERR_API_FORBIDDEN', `the ${caller.operator.role} role may not ${route.method} ${route.path}`);
  }
  if (route.method !== 'GET' && caller.via === 'cookie' && !csrfOk(caller)) {
    throw new ApiError('ERR_API_CSRF', 'a request made with the session cookie must carry the X-CSRF-Token header from sign-in');
  }
}
