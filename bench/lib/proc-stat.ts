/**
 * CPU and memory of any process, read from /proc (Linux): for brokers that are
 * not Node children answering over IPC (Mosquitto, redis-server, the workers of
 * `serve --workers`).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { return 100; } })();

/** The fields after the command name of /proc/PID/stat (field 3 onwards), or null when the process is gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** User + system CPU time of `pid`, µs (0 when it is gone). */
export function cpuUs(pid: number): number {
  const f = statFields(pid);
  return f ? ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK : 0; // utime, stime (fields 14 and 15)
}

/** Resident memory of `pid`, bytes (NaN when it is gone). */
export function rssBytes(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024;
  } catch {
    return NaN;
  }
}

/** The pids whose parent is `pid` (a node's workers under its primary). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f && Number(f[1]) === pid) out.push(Number(name)); // ppid (field 4)
  }
  return out;
}
