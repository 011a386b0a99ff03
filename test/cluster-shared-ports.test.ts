import t from 'tap';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { kernelSharesPorts } from '../broker/listeners.js';
import { connectDevice } from './helpers/broker.js';
import { lines, runCli } from './helpers/cli.js';
import { startRedis } from './helpers/redis.js';
import { startServe } from './helpers/serve-process.js';

// How a node's workers share its MQTT port. Where the kernel can (Linux, Node ≥ 22.12: SO_REUSEPORT),
// each worker accepts on a socket of its own and the primary holds none; elsewhere node:cluster's
// primary holds the one socket and hands connections over. Either way a second node on the port is refused.

/** The inodes of the TCP sockets in `state` (0A: listening, 01: established) with local port `port`, from /proc/net/tcp and tcp6. */
function socketInodes(port: number, state: '0A' | '01'): Set<string> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const out = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = row.trim().split(/\s+/);
      if (f.length > 9 && f[1]!.endsWith(`:${hex}`) && f[3] === state) out.add(f[9]!);
    }
  }
  return out;
}

/** The pids holding any of `inodes`, each with how many. */
function holders(inodes: Set<string>): Map<number, number> {
  const by = new Map<number, number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[];
    try {
      fds = readdirSync(join('/proc', pid, 'fd'));
    } catch {
      continue; // gone, or not ours
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(join('/proc', pid, 'fd', fd));
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) by.set(Number(pid), (by.get(Number(pid)) ?? 0) + 1);
    }
  }
  return by;
}

t.test('serve --workers 2: the MQTT port, its connections, and a second node on it', async (t) => {
  const redis = await startRedis(t);
  const serve = await startServe(['--workers', '2', '--bus', redis.url]);
  t.teardown(() => serve.stop());
  const listening = holders(socketInodes(serve.mqttPort, '0A'));
  const shared = kernelSharesPorts();
  if (shared) {
    t.equal(listening.size, 2, `two processes listen on the port (node ${process.version}: SO_REUSEPORT)`);
    t.notOk(listening.has(serve.pid), 'neither is the primary: it hands out no connection');
    t.same([...listening.values()], [1, 1], 'one socket each');
  } else {
    t.same([...listening.entries()], [[serve.pid, 1]], `the primary holds the one listening socket (node ${process.version}: node:cluster hands connections over)`);
  }

  const devices = await serve.provision(Array.from({ length: 16 }, (_, i) => `spread-${i}`));
  const clients = await Promise.all(devices.map((d) => connectDevice(`mqtt://127.0.0.1:${serve.mqttPort}`, d)));
  t.teardown(() => { for (const c of clients) c.client?.end(true); });
  t.same(clients.map((c) => c.code), devices.map(() => 0), 'every device accepted');
  // The server side of each connection: in the workers' hands, and both workers have some
  // (16 connections all hashed to one of two sockets: 1 in 32,768).
  const accepted = holders(socketInodes(serve.mqttPort, '01'));
  t.notOk(accepted.has(serve.pid), 'no accepted connection stays with the primary');
  t.equal(accepted.size, 2, `both workers hold connections (${[...accepted.values()].join(' + ')})`);
  t.equal([...accepted.values()].reduce((a, b) => a + b, 0), 16, 'all 16');

  const second = await runCli(['serve', '--db', serve.db, '--workers', '2', '--bus', redis.url, '--host', '127.0.0.1', '--mqtt-port', String(serve.mqttPort), '--ws-port', 'off', '--http-port', '0', '--log-level', 'error'], { timeoutMs: 120_000 });
  t.equal(second.code, 2, 'a second node on the same port: exit 2');
  t.same(lines(second.stderr), [`credbroker: port already in use: MQTT ${serve.mqttPort} on 127.0.0.1 (--mqtt-port); is another broker running? Stop it, or choose other ports with --mqtt-port ("off" disables a listener)`], 'one line');
  const after = await connectDevice(`mqtt://127.0.0.1:${serve.mqttPort}`, devices[0]!);
  t.equal(after.code, 0, 'the first node still takes connections');
  after.client?.end(true);
});
