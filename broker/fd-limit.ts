import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Logger } from './logger.js';

/** The process's open-files limit (RLIMIT_NOFILE). */
export interface FdLimit {
  readonly soft: number;
  readonly hard: number | 'unlimited';
}

/** Reads RLIMIT_NOFILE from /proc/self/limits (Linux); null where that file does not exist. */
export function readFdLimit(path = '/proc/self/limits'): FdLimit | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  if (!m) return null;
  const num = (v: string) => (v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v));
  return { soft: num(m[1]!), hard: m[2] === 'unlimited' ? 'unlimited' : Number(m[2]) };
}

/**
 * Raises the soft open-files limit to the hard one and logs both. Node itself
 * already does this at start-up (src/node.cc, PlatformInit: setrlimit to the
 * hard limit, or a binary search up to 2^20 when that is unlimited), so this
 * normally only confirms it. Node has no setrlimit of its own; where the soft
 * limit is still lower (an embedder that turned it off), util-linux `prlimit`
 * on our own pid raises it — no native addon. Returns the limit now in force,
 * or null where it cannot be read (not Linux).
 */
export function raiseFdLimit(log: Logger): FdLimit | null {
  const before = readFdLimit();
  if (!before) {
    log.info({ event: 'broker.fd_limit', soft: null, hard: null }, 'open-files limit unknown on this platform (no /proc/self/limits)');
    return null;
  }
  if (typeof before.hard === 'number' && before.soft < before.hard) {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${before.hard}:`], { stdio: 'ignore', timeout: 5000 });
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'prlimit (util-linux) is not installed' : (err as Error).message;
      log.warn({ event: 'broker.fd_limit_raise_failed', soft: before.soft, hard: before.hard, err: why },
        'could not raise the soft open-files limit to the hard limit: set it before start (ulimit -n, systemd LimitNOFILE=)');
    }
  }
  const now = readFdLimit() ?? before;
  log.info({ event: 'broker.fd_limit', soft: now.soft, hard: now.hard, softBefore: before.soft }, 'open-files limit');
  return now;
}
