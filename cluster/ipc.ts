import type { Worker } from 'node:cluster';
import type { OpsAnswer, RunningBroker } from '../broker/index.js';
import type { LimiterName } from '../broker/rate-limit.js';

/** Per limit, `[key, n]` pairs: tokens a worker took (`took`), or ms until a key has a token again (`empty`). */
export type KeyCounts = Partial<Record<LimiterName, [string, number][]>>;

/** The messages between a node's primary and its workers (node:cluster's IPC channel; prom-client uses the same channel with its own `type`s). */
export type ToWorker =
  | { credbroker: 'ask'; id: number; method: string; target: string }
  | { credbroker: 'empty'; keys: KeyCounts }
  | { credbroker: 'stop' };
export type ToPrimary =
  | { credbroker: 'ready'; ports: RunningBroker['ports'] }
  | { credbroker: 'took'; counts: KeyCounts }
  | { credbroker: 'answer'; id: number; answer: OpsAnswer }
  // A worker that could not start: its one error line, which the primary prints once for the node.
  | { credbroker: 'failed'; line: string };

export function isToPrimary(m: unknown): m is ToPrimary {
  return typeof m === 'object' && m !== null && typeof (m as { credbroker?: unknown }).credbroker === 'string';
}
export const isToWorker = isToPrimary as unknown as (m: unknown) => m is ToWorker;

/**
 * The primary's side of "ask a worker's operations port": one request, its
 * answer, or null when the worker does not answer in time (gone, stuck).
 */
export class WorkerAsker {
  private next = 1;
  private readonly pending = new Map<number, (a: OpsAnswer | null) => void>();

  /** Feed every message from a worker here. */
  received(m: ToPrimary): void {
    if (m.credbroker !== 'answer') return;
    this.pending.get(m.id)?.(m.answer);
  }

  ask(worker: Worker, method: string, target: string, timeoutMs: number): Promise<OpsAnswer | null> {
    const id = this.next++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (a: OpsAnswer | null) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(a);
      };
      this.pending.set(id, done);
      tell(worker, { credbroker: 'ask', id, method, target }, () => done(null));
    });
  }
}

/**
 * Sends `m` to a worker. A worker can exit between `isConnected()` and the write
 * (a port in use at start, a crash): the write then fails with EPIPE, which
 * without a callback is an 'error' event that would kill the primary. The worker's
 * 'exit' handler deals with its going; `failed` is told, if given.
 */
export function tell(worker: Worker, m: ToWorker, failed: () => void = () => {}): void {
  try {
    worker.send(m, (err: Error | null) => { if (err) failed(); });
  } catch {
    failed();
  }
}

/**
 * Calls `fn` for each well-formed `[key, n]` of a limit `known` names, with `n`
 * a positive finite number; skips anything else, so that a malformed message
 * changes nothing.
 */
export function eachCount(counts: unknown, known: (name: string) => boolean, fn: (name: LimiterName, key: string, n: number) => void): void {
  if (typeof counts !== 'object' || counts === null) return;
  for (const [name, list] of Object.entries(counts)) {
    if (!known(name) || !Array.isArray(list)) continue;
    for (const e of list as unknown[]) {
      if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number' && e[1] > 0 && Number.isFinite(e[1])) fn(name as LimiterName, e[0], e[1]);
    }
  }
}
