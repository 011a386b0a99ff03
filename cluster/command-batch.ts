import type { ChainableCommander, Redis } from 'ioredis';

interface Waiter {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** How long the first command of a batch waits for others to join it. */
export const BATCH_WINDOW_MS = 1;

/**
 * The commands issued within `BATCH_WINDOW_MS` of each other go to Redis as one
 * pipeline: one write, and one read of the replies.
 *
 * Why: ioredis' auto-pipelining flushes at the end of each callback, and a
 * CONNECT's work is spread over several event-loop turns (broker/connect-slices.ts),
 * so under a CONNECT load each CONNECT's claim was a write of its own. A write to
 * Redis over TCP is the bus' largest cost per CONNECT in a worker's profile (the
 * kernel delivers it to Redis within the call). The wait added is at most the window.
 */
export class CommandBatch {
  private pipe: ChainableCommander | null = null;
  private waiters: Waiter[] = [];

  constructor(private readonly redis: Redis) {}

  /** Queues one command (`add` calls it on the turn's pipeline) and resolves with its reply, or rejects with its error or the pipeline's. */
  run<T>(add: (pipe: ChainableCommander) => void): Promise<T> {
    if (!this.pipe) {
      this.pipe = this.redis.pipeline();
      setTimeout(() => this.flush(), BATCH_WINDOW_MS);
    }
    add(this.pipe);
    return new Promise<T>((resolve, reject) => this.waiters.push({ resolve: resolve as (v: unknown) => void, reject }));
  }

  private flush(): void {
    const pipe = this.pipe!;
    const waiters = this.waiters;
    this.pipe = null;
    this.waiters = [];
    pipe.exec().then((results) => {
      waiters.forEach((w, i) => {
        const [err, reply] = results?.[i] ?? [new Error('Redis pipeline returned no reply'), null];
        if (err) w.reject(err);
        else w.resolve(reply);
      });
    }, (err: Error) => { for (const w of waiters) w.reject(err); });
  }
}
