import type { Worker } from 'node:cluster';
import type { Server } from 'node:http';
import { AggregatorRegistry, Counter, type Registry } from 'prom-client';
import type { OpsAnswer } from '../broker/index.js';
import { createOpsHttpServer, dispatchOps, type OpsHttpLimits, type OpsMount, type OpsTls } from '../broker/ops-http-server.js';
import { opsExtensions } from '../broker/http.js';
import { createApi, type Api } from '../api/index.js';
import type { Registry as CredbrokerRegistry } from '../registry/index.js';
import { Keyring } from '../tokens/keyring.js';
import { parseSessionQuery, type SessionPage, type SessionView } from '../broker/session-list.js';
import type { BusSecurity } from './bus-policy.js';
import type { WorkerAsker } from './ipc.js';

/** How long the primary waits for a worker's answer. */
const ASK_MS = 3000;

/**
 * A node's operations port, served by its primary for all its workers:
 * `/metrics` adds the workers' metrics up (prom-client's AggregatorRegistry) and
 * appends the primary's own; `/readyz` is ready only when every expected worker
 * answers ready (its broker listens, its registry reads, its bus is connected),
 * and says how the bus is protected (bus-policy.ts);
 * `/sessions` merges the workers' pages; `/.well-known/jwks.json` is one
 * worker's answer; `/healthz` and the mounts (the console's files) are the primary's. The operator API (`/api/v1/`)
 * runs here too, on the primary's own registry connection: its sessions are the
 * workers' merged pages, its fleet counters the summed metrics, and a revoke
 * reaches the workers through the registry's change feed as the CLI's does.
 */
export function createNodeOpsServer(opts: {
  workers: () => Worker[]; expected: number; asker: WorkerAsker; own: Registry; bus: BusSecurity; limits: OpsHttpLimits;
  /** The registry the API works on; the ops port's address and TLS; more mounts (the console). */
  reg: CredbrokerRegistry; host: string; tls: OpsTls | null; mounts: readonly OpsMount[];
}): { server: Server; api: Api } {
  const aggregator = new AggregatorRegistry();
  // Its own name: the workers' credbroker_limit_refusals_total is summed into the same page.
  const refusals = new Counter({ name: 'credbroker_node_ops_http_refusals_total', help: 'Connections to the node\'s ops HTTP port reset at accept, by limit', labelNames: ['limit'] as const, registers: [opts.own] });
  const askAll = (target: string) => Promise.all(opts.workers().map((w) => opts.asker.ask(w, 'GET', target, ASK_MS)));
  const sessions = async (target: string, limit: number): Promise<SessionPage> =>
    mergePages((await askAll(target)).flatMap((a) => (a?.status === 200 ? [JSON.parse(a.body) as SessionPage] : [])), limit);
  const metricsText = async () => {
    const [workers, own] = await Promise.all([aggregator.clusterMetrics(), opts.own.metrics()]);
    return `${workers}\n${own}`;
  };
  const { reg } = opts;
  const api = createApi({
    reg,
    // Read at each grant: the primary follows no key rotation of its own.
    issuer: async () => ({ reg, keyring: await Keyring.load(reg), settings: await reg.settings.read() }),
    sessions: (q) => sessions(`/sessions?${new URLSearchParams({ limit: String(q.limit), ...(q.after !== undefined && { after: q.after }), ...(q.device !== undefined && { device: q.device }) })}`, q.limit),
    metricsText,
    secure: opts.tls !== null,
  });
  const answer = async (method: string, target: string): Promise<OpsAnswer> => {
    const send = (status: number, type: string, body: string): OpsAnswer => ({ status, type, body });
    const url = URL.canParse(`http://ops${target}`) ? new URL(`http://ops${target}`) : null;
    if (!url) return send(400, 'text/plain', 'bad request\n');
    if (method !== 'GET' && method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    switch (url.pathname) {
      case '/healthz':
        return send(200, 'application/json', '{"status":"ok"}\n');
      case '/readyz': {
        const answers = await askAll('/readyz');
        const ready = answers.filter((a) => a?.status === 200).length;
        const sessions = answers.reduce((n, a) => n + (a ? (JSON.parse(a.body) as { sessions: number }).sessions : 0), 0);
        const ok = ready === opts.expected;
        // A worker that cannot read the registry serves on, degraded (broker/http.ts): so does the node.
        const degraded = answers.some((a) => a?.status === 200 && (JSON.parse(a.body) as { status?: string }).status === 'degraded');
        const status = !ok ? 'not ready' : degraded ? 'degraded' : 'ready';
        return send(ok ? 200 : 503, 'application/json', `${JSON.stringify({ status, ...(degraded ? { registry: 'unavailable' } : {}), sessions, workers: { ready, expected: opts.expected }, bus: opts.bus })}\n`);
      }
      case '/metrics':
        try {
          return send(200, aggregator.contentType, await metricsText());
        } catch {
          return send(500, 'text/plain', 'metrics unavailable\n');
        }
      case '/sessions': {
        const q = parseSessionQuery(url.searchParams);
        if (typeof q === 'string') return send(400, 'application/json', `${JSON.stringify({ error: q })}\n`);
        return send(200, 'application/json', `${JSON.stringify(await sessions(target, q.limit))}\n`);
      }
      default: {
        const w = opts.workers()[0];
        const a = w ? await opts.asker.ask(w, method, target, ASK_MS) : null;
        return a ?? send(503, 'text/plain', 'no worker answered\n');
      }
    }
  };
  const ext = opsExtensions(api, opts.host, opts.mounts);
  const server = createOpsHttpServer(opts.limits, (limit) => refusals.inc({ limit }), (req, res) => dispatchOps(ext, req, res, answer), opts.tls);
  return { server, api };
}

/**
 * The node's page from its workers' pages of the same query: by device id, the
 * first `limit`; a device seen on two workers (a takeover in progress) once.
 */
export function mergePages(pages: SessionPage[], limit: number): SessionPage {
  const byDevice = new Map<string, SessionView>();
  for (const p of pages) for (const s of p.sessions) {
    const seen = byDevice.get(s.deviceId);
    if (!seen || s.connectedAt > seen.connectedAt) byDevice.set(s.deviceId, s);
  }
  const ids = [...byDevice.keys()].sort();
  const page = ids.slice(0, limit);
  const more = ids.length > limit || pages.some((p) => p.next !== null);
  return { sessions: page.map((id) => byDevice.get(id)!), next: more && page.length ? page[page.length - 1]! : null };
}
