import t from 'tap';
import { createServer, type AddressInfo } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lines, runCli } from './helpers/cli.js';
import { registryTargetIn } from './helpers/backend.js';
import { startRedis } from './helpers/redis.js';

// `serve --workers 2` on a port in use stops as one process does: exit 2, one line, no worker left behind.

/** Processes whose command line holds `marker` (a node's primary and its workers share theirs). */
function processesWith(marker: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
    try {
      return readFileSync(join('/proc', pid, 'cmdline'), 'utf8').includes(marker);
    } catch {
      return false; // gone meanwhile
    }
  }).map(Number);
}

t.test('serve --workers 2 with the MQTT port in use: exit 2 with one line', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const redis = await startRedis(t);
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.teardown(() => taken.close());
  const port = (taken.address() as AddressInfo).port;

  const r = await runCli(['serve', '--db', db, '--workers', '2', '--bus', redis.url, '--host', '127.0.0.1', '--mqtt-port', String(port), '--ws-port', 'off', '--http-port', '0', '--log-level', 'error'], { timeoutMs: 120_000 });
  t.equal(r.code, 2, 'exit 2, as one process');
  t.same(lines(r.stderr), [`credbroker: port already in use: MQTT ${port} on 127.0.0.1 (--mqtt-port); is another broker running? Stop it, or choose other ports with --mqtt-port ("off" disables a listener)`], 'one line, once for the node');
  t.same(processesWith(db), [], 'no worker left running');
});
