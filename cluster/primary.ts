import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import type { BrokerConfig, Logger, RunningBroker } from '../broker/index.js';
import { readFdLimit } from '../broker/fd-limit.js';
import { rateLimits } from '../broker/limits.js';
import { kernelSharesPorts, listen } from '../broker/listeners.js';
import { redactUrl } from '../util/redact-url.js';
import { checkBusSecurity } from './bus-policy.js';
import { isToPrimary, tell, WorkerAsker } from './ipc.js';
import { NodeLimits } from './node-limits.js';
import { createNodeOpsServer } from './node-ops.js';
import { opsHttpLimits, type OpsMount } from '../broker/ops-http-server.js';
import { opsTls } from '../broker/http.js';
import { openRegistry } from '../registry/index.js';
import { reservePorts, type ReservedPorts } from './shared-ports.js';
import { workerShare } from './worker-share.js';

/** Environment of a forked worker: its config (as the primary resolved it, so that a restarted worker never reads a config file edited since, with its share of the node's limits) and its index. */
export const WORKER_CONFIG_ENV = 'CREDBROKER_CLUSTER_CONFIG';
export const WORKER_INDEX_ENV = 'CREDBROKER_CLUSTER_WORKER';
/** Set to 1 when the worker binds the MQTT ports itself with SO_REUSEPORT (shared-ports.ts); else node:cluster's primary hands it connections. */
export const WORKER_REUSEPORT_ENV = 'CREDBROKER_CLUSTER_REUSEPORT';

/** Restart backoff: doubles per crash in a row, from 250 ms up to 30 s; a worker up for a minute resets it. */
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 30_000;
const STABLE_MS = 60_000;
/** How long a stopping worker has to drain before it is killed. */
const STOP_GRACE_MS = 30_000;

/** A worker failed while the node started: its exit code is the node's, and `line` (when it sent one) says why. */
export class WorkerStartError extends Error {
  constructor(readonly exitCode: number, readonly line: string | null) {
    super(`a worker exited with code ${exitCode} while the node started`);
  }
}

export interface RunningNode {
  readonly workers: number;
  readonly ports: RunningBroker['ports'];
  /** Stops every worker (each drains its sessions), then the ops port. */
  close(): Promise<void>;
}

/** `workers` as a count ("auto": one per CPU the process may use). */
export function workerCount(workers: BrokerConfig['workers']): number {
  return workers === 'auto' ? availableParallelism() : workers;
}

/**
 * A node: the primary process of `serve --bus`. It forks the workers
 * (cluster/worker.ts), which share the MQTT ports: each on its own SO_REUSEPORT
 * socket where the kernel can share them (shared-ports.ts), else through
 * node:cluster, whose primary accepts every connection and hands it to a worker;
 * restarts one that dies, with backoff, and logs it; serves the node's
 * operations port (node-ops.ts). Resolves once every worker listens; a worker
 * that fails before then (a port in use, a bad certificate) stops the node with
 * that worker's exit code and its line.
 */
export async function startNode(config: BrokerConfig, log: Logger, opts: { opsMounts?: readonly OpsMount[] } = {}): Promise<RunningNode> {
  const bus = checkBusSecurity(config.bus!, config.busInsecure);
  // At every start: an operator who allowed it once must keep being told.
  if (bus.insecure && !bus.secure) log.warn({ event: 'bus.insecure', bus: redactUrl(config.bus!), tls: bus.tls, auth: bus.auth, loopback: bus.loopback }, 'bus without TLS and a password allowed by --bus-insecure: whoever reaches Redis can read device secrets and forge messages');
  else if (!bus.auth) log.warn({ event: 'bus.unauthenticated', bus: redactUrl(config.bus!) }, 'bus on loopback without a password: any local process can read and write it');
  const expected = workerCount(config.workers);
  const asker = new WorkerAsker();
  const own = new Registry();
  const restarts = new Counter({ name: 'credbroker_worker_restarts_total', help: 'Workers of this node restarted after they died', registers: [own] });
  const slots: (Worker | null)[] = Array.from({ length: expected }, () => null);
  new Gauge({ name: 'credbroker_workers', help: 'Workers of this node alive (forked and not exited)', registers: [own], collect() { this.set(slots.filter(Boolean).length); } });
  let stopping = false;
  let started = false;
  const crashes = new Array<number>(expected).fill(0);
  let ports: RunningBroker['ports'] | null = null;
  let startup!: { resolve: () => void; reject: (code: number) => void };
  // Every worker meets the same port in use: the first one's line speaks for the node.
  let failure: string | null = null;
  const up = new Promise<void>((resolve, reject) => { startup = { resolve, reject: (code) => reject(new WorkerStartError(code, failure)) }; });
  const readyOnce = new Set<number>();
  // The node's per-key limits, kept here for all its workers (a lone worker keeps its own).
  const limits = expected > 1 ? new NodeLimits(rateLimits(config)) : null;

  cluster.setupPrimary({ silent: false });
  const fd = readFdLimit();
  // Where the kernel can share a port, each worker accepts on its own socket; else the primary accepts and hands each connection over.
  let reserved: ReservedPorts | null = null;
  const fork = (index: number) => {
    const env = { [WORKER_CONFIG_ENV]: JSON.stringify(workerShare(reserved?.config ?? config, expected, index, fd)), [WORKER_INDEX_ENV]: String(index), [WORKER_REUSEPORT_ENV]: reserved ? '1' : '' };
    const w = cluster.fork(env);
    const forkedAt = Date.now();
    slots[index] = w;
    w.on('message', (m: unknown) => {
      if (!isToPrimary(m)) return;
      if (m.credbroker === 'took') {
        const empty = limits?.took(m.counts);
        if (empty) for (const other of live()) tell(other, empty);
        return;
      }
      if (m.credbroker === 'failed') { failure ??= m.line; return; }
      asker.received(m);
      if (m.credbroker !== 'ready') return;
      ports ??= m.ports;
      readyOnce.add(index);
      log.info({ event: 'cluster.worker_ready', worker: index, pid: w.process.pid }, 'worker ready');
      if (!started && readyOnce.size === expected) { started = true; startup.resolve(); }
    });
    w.on('exit', (code, signal) => {
      slots[index] = null;
      if (stopping) return;
      if (!started) { stopping = true; stopAll(); startup.reject(code || 1); return; }
      crashes[index] = Date.now() - forkedAt >= STABLE_MS ? 1 : crashes[index]! + 1;
      const delay = Math.min(BACKOFF_MIN_MS * 2 ** (crashes[index]! - 1), BACKOFF_MAX_MS);
      restarts.inc();
      log.error({ event: 'cluster.worker_exited', worker: index, pid: w.process.pid, code, signal, restartInMs: delay }, 'worker died: restarting it');
      setTimeout(() => { if (!stopping) fork(index); }, delay).unref();
    });
  };
  const live = () => slots.filter((w): w is Worker => w !== null && w.isConnected());
  const stopAll = () => { for (const w of slots) if (w?.isConnected()) tell(w, { credbroker: 'stop' }); };

  // The ops port first: while the workers wait for Redis, /readyz answers "not ready" (503) rather than nothing.
  // The operator API on the node's ops port works on a registry connection of the primary's own.
  const reg = config.httpPort === null ? null : await openRegistry(config.db);
  const ops = reg && createNodeOpsServer({
    workers: live, expected, asker, own, bus, limits: opsHttpLimits(config), reg, host: config.httpHost, tls: opsTls(config), mounts: opts.opsMounts ?? [],
  });
  const http: Server | null = ops?.server ?? null;
  const closeOps = async () => { ops?.api.close(); await reg?.close(); };
  const httpPort = http ? await listen(http, config.httpPort!, config.httpHost, 511, 'HTTP', '--http-port').catch(async (err: unknown) => { await closeOps(); throw err; }) : null;
  try {
    if (kernelSharesPorts()) reserved = await reservePorts(config);
    for (let i = 0; i < expected; i++) fork(i);
    await up;
    reserved?.release();
  } catch (err) {
    reserved?.release();
    http?.close();
    await closeOps();
    stopping = true;
    stopAll();
    throw err;
  }
  log.info({ event: 'cluster.started', workers: expected, bus: redactUrl(config.bus ?? ''), ports: { ...ports!, http: httpPort } }, 'credbroker node listening');

  let closing: Promise<void> | null = null;
  return {
    workers: expected,
    ports: { ...ports!, http: httpPort },
    close: () => {
      closing ??= (async () => {
        stopping = true;
        const gone = slots.filter((w): w is Worker => w !== null).map((w) => new Promise<void>((r) => {
          if (w.isDead()) return r();
          w.once('exit', () => r());
          setTimeout(() => w.process.kill('SIGKILL'), STOP_GRACE_MS).unref();
        }));
        stopAll();
        await Promise.all(gone);
        limits?.close();
        if (http) await new Promise<void>((r) => http!.close(() => r()));
        await closeOps();
      })();
      return closing;
    },
  };
}
