import type { ChainableCommander, Redis } from 'ioredis';

interface Waiter {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/**
 * The commands issued during one turn of the event loop go to Redis as one
 * pipeline, written once after the turn's I/O callbacks (setImmediate).
 *
 * Why: ioredis' auto-pipelining flushes at the end of each callback, so under a
 * CONNECT load each CONNECT's claim was a write of its own to Redis, and a write
 * that wakes another process is the bus' largest cost per CONNECT in a worker's
 * profile. The CONNECTs read in one turn now share one write, and Redis answers
 * them in one read. The wait added is the rest of the turn.
 */
export class TurnBatch {
  private pipe: ChainableCommander | null = null;
  private waiters: Waiter[] = [];

  constructor(private readonly redis: Redis) {}

  /** Queues one command (`add` calls it on the turn's pipeline) and resolves with its reply, or rejects with its error or the pipeline's. */
  run<T>(add: (pipe: ChainableCommander) => void): Promise<T> {
    if (!this.pipe) {
      this.pipe = this.redis.pipeline();
      setImmediate(() => this.flush());
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
