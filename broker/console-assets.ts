import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { OpsMount } from './ops-http-server.js';

/** Where the console's pages are served: the ops port's `/console/`. */
export const CONSOLE_PATH = '/console/';

/**
 * The page may load its own script, style sheet and data: images, talk to its own
 * origin only, and never be framed: no inline script, no CDN, no request off the machine.
 */
export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** The built files (scripts/build-console.mjs) and their types: only these names are ever served. */
const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/**
 * The built console: dist/console/ beside dist/broker/ when running the build, and
 * the repository's dist/console/ when running from source (the tests import .ts files).
 */
function defaultDir(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return fileURLToPath(new URL(fromSource ? '../dist/console/' : '../console/', import.meta.url));
}

interface Answer { status: number; type: string; body: Buffer; location?: string }

/**
 * Serves the console from `dir` (default: the package's own build) under
 * `/console/`, as a mount of an ops port (`serve` passes it in
 * StartOptions.opsMounts; a cluster node's primary mounts it on the node's port). A request names a file by its exact name
 * in FILES, never a path on disk, so no request can reach another file. The files
 * are read once, on the first request that finds them.
 */
export function consoleMount(dir = defaultDir()): OpsMount {
  let files: Map<string, Buffer> | null = null;
  const load = (): Map<string, Buffer> | null => {
    try {
      files ??= new Map(Object.keys(FILES).map((name) => [name, readFileSync(`${dir}/${name}`)]));
    } catch {
      return null; // not built yet: asked again next time
    }
    return files;
  };
  const text = (status: number, body: string): Answer => ({ status, type: 'text/plain; charset=utf-8', body: Buffer.from(body) });
  const answer = (method: string, target: string): Answer => {
    // The path alone, parsed against a fixed base (as broker/http.ts does): dot segments are resolved here.
    const path = URL.canParse(`http://ops${target}`) ? new URL(`http://ops${target}`).pathname : null;
    if (path === null) return text(400, 'bad request\n');
    if (method !== 'GET' && method !== 'HEAD') return text(405, 'method not allowed\n');
    if (path === '/console') return { ...text(308, 'moved\n'), location: CONSOLE_PATH };
    const name = path === CONSOLE_PATH ? 'index.html' : path.startsWith(CONSOLE_PATH) ? path.slice(CONSOLE_PATH.length) : '';
    const type = Object.hasOwn(FILES, name) ? FILES[name] : undefined;
    if (type === undefined) return text(404, 'not found\n');
    const body = load()?.get(name);
    if (!body) return text(503, 'the console is not built: run npm run build\n');
    return { status: 200, type, body };
  };
  return {
    prefix: CONSOLE_PATH,
    handle(req, res) {
      const a = answer(req.method ?? 'GET', req.url ?? '/');
      res.writeHead(a.status, {
        'content-type': a.type,
        'content-length': a.body.length,
        'content-security-policy': CONSOLE_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-cache',
        ...(a.location ? { location: a.location } : {}),
      });
      res.end(req.method === 'HEAD' ? undefined : a.body);
    },
  };
}
