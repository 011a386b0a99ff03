import type { Worker } from 'node:cluster';
import type { OpsAnswer, RunningBroker } from '../broker/index.js';

/** The messages between a node's primary and its workers (node:cluster's IPC channel; prom-client uses the same channel with its own `type`s). */
export type ToWorker =
  | { credbroker: 'ask'; id: number; method: string; target: string }
  | { credbroker: 'stop' };
export type ToPrimary =
  | { credbroker: 'ready'; ports: RunningBroker['ports'] }
  | { credbroker: 'answer'; id: number; answer: OpsAnswer };

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
      try {
        worker.send({ credbroker: 'ask', id, method, target } satisfies ToWorker);
      } catch {
        done(null);
      }
    });
  }
}
