/**
 * Eclipse Mosquitto as a reference column (when Debian's `mosquitto` is
 * installed): a password file (`mosquitto_passwd`) with the same device ids and
 * an ACL file equivalent to the `sensor` and `observer` profiles. Its CPU and RSS
 * are read from /proc.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { BrokerHandle, BrokerStats } from './broker-proc.js';
import { freePort } from './free-port.js';
import { cpuUs, rssBytes } from './proc-stat.js';
import { sleep } from './stats.js';

export function mosquittoPath(): string | null {
  for (const p of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/local/bin/mosquitto']) {
    try { readFileSync(p, { flag: 'r' }).length; return p; } catch { /* next */ }
  }
  return null;
}

export interface MosquittoSetup {
  readonly bin: string;
  readonly dir: string;
  readonly passwordFile: string;
  readonly aclFile: string;
}

/**
 * Writes the password file (hashed in one `mosquitto_passwd -U` pass: as
 * `mosquitto_passwd -b` would, one user at a time) and the ACL file.
 */
export function prepareMosquitto(dir: string, users: readonly { username: string; password: string }[], observers: readonly string[]): MosquittoSetup | null {
  const bin = mosquittoPath();
  if (!bin) return null;
  chmodSync(dir, 0o755);
  const passwordFile = join(dir, 'mosquitto.passwd');
  writeFileSync(passwordFile, users.map((u) => `${u.username}:${u.password}`).join('\n') + '\n', { mode: 0o644 });
  execFileSync('mosquitto_passwd', ['-U', passwordFile], { stdio: 'ignore' });
  chmodSync(passwordFile, 0o644);
  const aclFile = join(dir, 'mosquitto.acl');
  writeFileSync(aclFile, [
    '# sensor profile',
    'pattern write devices/%u/telemetry',
    'pattern write devices/%u/events/#',
    'pattern read devices/%u/commands/#',
    ...observers.flatMap((o) => [`user ${o}`, 'topic read devices/#', 'topic write devices/+/commands/#']),
    '',
  ].join('\n'), { mode: 0o644 });
  return { bin, dir, passwordFile, aclFile };
}

async function waitListening(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((r) => {
      const s = connect({ port, host: '127.0.0.1' }, () => { s.destroy(); r(true); });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await sleep(25);
  }
  throw new Error('mosquitto did not start listening');
}

function procStats(pid: number): BrokerStats {
  return { cpuUs: cpuUs(pid), rss: rssBytes(pid), heapUsed: null, clients: null };
}

export async function startMosquitto(setup: MosquittoSetup, tag = 'run'): Promise<BrokerHandle> {
  const port = await freePort();
  const conf = join(setup.dir, `mosquitto-${tag}-${port}.conf`);
  writeFileSync(conf, [
    'per_listener_settings false',
    'allow_anonymous false',
    `password_file ${setup.passwordFile}`,
    `acl_file ${setup.aclFile}`,
    'persistence false',
    'log_dest none',
    'user root',
    'max_queued_messages 1000000',
    'max_inflight_messages 0',
    'max_connections -1',
    `listener ${port} 127.0.0.1`,
    '',
  ].join('\n'), { mode: 0o644 });
  // stderr kept aside: it is shown only if Mosquitto fails (it always warns about running as root).
  const child = spawn(setup.bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { if (stderr.length < 4096) stderr += d; });
  child.once('exit', (code) => { if (code) process.stderr.write(`mosquitto exited with code ${code}: ${stderr}\n`); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitListening(port, child);
  return {
    kind: 'mosquitto', port, pid: child.pid!,
    stats: async () => procStats(child.pid!),
    gc: async () => {},
    async close() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
