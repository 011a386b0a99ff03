/** Kernel TCP counters: listen-queue overflows and SYN drops (`nstat -az`, or /proc/net/netstat). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ListenCounters { readonly overflows: number; readonly drops: number; readonly source: string }

export function listenCounters(): ListenCounters {
  try {
    const out = execFileSync('nstat', ['-az', 'TcpExtListenOverflows', 'TcpExtListenDrops'], { encoding: 'utf8' });
    const get = (name: string) => Number(new RegExp(`${name}\\s+(\\d+)`).exec(out)?.[1] ?? NaN);
    return { overflows: get('TcpExtListenOverflows'), drops: get('TcpExtListenDrops'), source: 'nstat' };
  } catch {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
    const names = lines[i]!.split(/\s+/);
    const values = lines[i + 1]!.split(/\s+/);
    const get = (n: string) => Number(values[names.indexOf(n)]);
    return { overflows: get('ListenOverflows'), drops: get('ListenDrops'), source: '/proc/net/netstat' };
  }
}
