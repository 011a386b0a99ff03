import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';
import type { BrokerConfig } from '../broker/index.js';
import { UsageError } from '../errors/index.js';

/** How to reach the bus: its URL (a Redis ACL user and password may be in it) and, for `rediss://`, the CA to verify it with. */
export interface RedisTarget {
  readonly url: string;
  /** PEM; null: the system's CAs. */
  readonly ca: string | null;
}

/** The bus of `config`, its CA file read now: an unreadable file is one line and exit 2, before any connection. */
export function redisTarget(config: Pick<BrokerConfig, 'bus' | 'busCa'>): RedisTarget {
  let ca: string | null = null;
  if (config.busCa !== null) {
    try {
      ca = readFileSync(config.busCa, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --bus-ca ${config.busCa}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'ERR_CONFIG');
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--bus-ca ${config.busCa} holds no PEM certificate`, 'ERR_CONFIG');
  }
  return { url: config.bus!, ca };
}

/**
 * How long a command may wait for Redis' reply before it fails: a Redis that
 * hangs (stopped, swapping, a partition that drops packets without a reset)
 * keeps its connection open, so without a deadline a CONNECT, a SUBACK or a
 * PUBACK waiting on it would wait for ever. A command that fails so takes the
 * same path as one sent while Redis is away (counted; see bus.ts).
 */
export const COMMAND_TIMEOUT_MS = 5_000;

/** Settles when `work` does, or after COMMAND_TIMEOUT_MS: what a SUBACK waits for of a Redis that may not answer. */
export function atMostCommandTimeout(work: Promise<unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    const late = setTimeout(resolve, COMMAND_TIMEOUT_MS);
    const settle = () => { clearTimeout(late); resolve(); };
    work.then(settle, settle);
  });
}

/**
 * `opts` plus what every Redis connection of the cluster needs to reach `target`
 * (bus.ts' three, shared-limits.ts' two): over `rediss://`, TLS with the server's
 * certificate verified (Node's default; never turned off), against the CA given.
 * The user and password come from the URL itself (ioredis reads them there).
 */
export function redisOptions(target: RedisTarget, opts: RedisOptions): RedisOptions {
  if (new URL(target.url).protocol !== 'rediss:') return opts;
  return { ...opts, tls: target.ca === null ? {} : { ca: target.ca } };
}
