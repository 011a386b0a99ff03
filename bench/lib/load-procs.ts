/**
 * A CONNECT load generator in several processes: one Node process saturates
 * near 4,700 CONNECT/s, below what a node of several workers takes. The same
 * file is both sides:
 * - parent: `startLoadProcs(k)` forks this file k times; `connect()` splits the
 *   packets among the children and starts them together;
 * - child (`--load-child`): runs raw-client's connectMany on its share and
 *   answers with its counts and its start and end times (wall clock, ms).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connectMany } from './raw-client.js';

const SELF = fileURLToPath(import.meta.url);

export interface LoadOutcome {
  /** Accepted CONNECTs per second over all children: from the first start to the last CONNACK. */
  readonly rate: number;
  readonly ms: number;
  readonly ok: number;
  readonly refused: number;
  readonly errors: number;
}

export interface LoadProcs {
  readonly size: number;
  /** Connects once per packet (DISCONNECT after each CONNACK), `inflight` outstanding in all, spread over `ports` in turn. */
  connect(ports: readonly number[], packets: readonly Buffer[], inflight: number): Promise<LoadOutcome>;
  close(): Promise<void>;
}

type Share = { ok: number; refused: number; errors: number; startAt: number; endAt: number };

export async function startLoadProcs(k: number): Promise<LoadProcs> {
  const children: ChildProcess[] = Array.from({ length: k }, () => fork(SELF, ['--load-child'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  await Promise.all(children.map((c) => new Promise<void>((resolve, reject) => {
    c.once('message', () => resolve());
    c.once('exit', (code) => reject(new Error(`load child exited (${code}) before it was ready`)));
  })));
  const ask = <T>(c: ChildProcess, m: unknown) => new Promise<T>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`load child exited (${code})`));
    c.once('exit', onExit);
    c.once('message', (r: T) => { c.off('exit', onExit); resolve(r); });
    c.send(m as object);
  });
  return {
    size: k,
    async connect(ports, packets, inflight) {
      // Each child gets its share first (decoding is not load), then all start on one signal.
      await Promise.all(children.map((c, i) => ask(c, {
        cmd: 'load', port: ports[i % ports.length], inflight: Math.max(1, Math.round(inflight / k)),
        packets: packets.filter((_, j) => j % k === i).map((p) => p.toString('base64')),
      })));
      const shares = await Promise.all(children.map((c) => ask<Share>(c, { cmd: 'go' })));
      const ms = Math.max(...shares.map((s) => s.endAt)) - Math.min(...shares.map((s) => s.startAt));
      const sum = (f: keyof Share) => shares.reduce((n, s) => n + s[f], 0);
      return { rate: (sum('ok') * 1000) / ms, ms, ok: sum('ok'), refused: sum('refused'), errors: sum('errors') };
    },
    async close() {
      await Promise.all(children.map((c) => new Promise<void>((r) => {
        if (c.exitCode !== null) return r();
        c.once('exit', () => r());
        c.disconnect();
      })));
    },
  };
}

// ---------------------------------------------------------------- child side

function child(): void {
  let job: { port: number; inflight: number; packets: Buffer[] } | null = null;
  process.on('message', async (m: { cmd: string; port?: number; inflight?: number; packets?: string[] }) => {
    if (m.cmd === 'load') {
      job = { port: m.port!, inflight: m.inflight!, packets: m.packets!.map((p) => Buffer.from(p, 'base64')) };
      process.send!({ loaded: job.packets.length });
    } else if (m.cmd === 'go' && job) {
      const startAt = performance.timeOrigin + performance.now();
      const out = await connectMany(job.port, job.packets, job.inflight, false);
      const endAt = performance.timeOrigin + performance.now();
      await out.drained;
      process.send!({ ok: out.ok, refused: out.refused, errors: out.errors, startAt, endAt } satisfies Share);
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready: true });
}

if (process.argv[1] === SELF && process.argv[2] === '--load-child') child();
