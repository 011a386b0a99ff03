// A broker killed with SIGKILL right after a revocation written by another
// process (SPEC "Revocation": a restart never forgets a revocation; "Bad input
// and faults": a process killed mid-way loses nothing).
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { openIssuer, provisionDevices, type DeviceCredentials } from '../provisioning/index.js';
import { connectDevice } from './helpers/broker.js';
import { CLI, hasCli, pool, runCli, runNode, SOAK, spawnBrokerChild } from './helpers/hostile-util.js';

const DEVICES = SOAK ? 2000 : 500;

t.test(`SIGKILL after a revocation, ${DEVICES} devices connected: restart refuses the revoked device, everyone else reconnects`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-crash-'));
  const db = join(dir, 'registry.db');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const issuer = await openIssuer(db);
  const ids = Array.from({ length: DEVICES }, (_, i) => `crash-${String(i).padStart(4, '0')}`);
  const { provisioned } = await provisionDevices(issuer, ids.map((id, i) => ({ line: i + 2, id })), { profile: 'sensor', brokerUrl: 'mqtt://127.0.0.1' });
  issuer.reg.close();
  const creds = new Map<string, DeviceCredentials>(provisioned.map((c) => [c.deviceId, c]));
  const victim = ids[137]!;

  const b1 = await spawnBrokerChild(db);
  t.teardown(() => { b1.child.kill('SIGKILL'); });
  const url1 = `mqtt://127.0.0.1:${b1.port}`;
  const clients: MqttClient[] = [];
  const first = await pool(ids, 50, async (id) => {
    const c = await connectDevice(url1, creds.get(id)!);
    if (c.client) clients.push(c.client);
    return c.code;
  });
  t.equal(first.filter((c) => c === 0).length, DEVICES, `all ${DEVICES} devices connected to the child broker`);
  const victimGone = new Promise<void>((r) => clients.find((c) => c.options.clientId === victim)?.once('close', () => r()));

  // A second process writes the revocation (the CLI when it is built, else the library from dist/).
  const revoker = hasCli()
    ? await runCli(['revoke', victim, '--reason', 'stolen', '--db', db])
    : await runNode(`import { openRegistry } from './dist/registry/index.js'; import { revokeDevices } from './dist/operations/index.js';
        const reg = await openRegistry(process.argv[1]); await revokeDevices(reg, [process.argv[2]], 'stolen'); await reg.close();`, { args: [db, victim] });
  t.comment(`revocation written by ${hasCli() ? CLI : 'node -e (dist/operations)'}`);
  t.equal(revoker.code, 0, `the revoking process exited 0 ${revoker.stderr}`);
  b1.child.kill('SIGKILL');
  const exit = await b1.exited;
  t.equal(exit.signal, 'SIGKILL', 'the broker was killed with SIGKILL');
  for (const c of clients) c.end(true);
  void victimGone;

  const b2 = await spawnBrokerChild(db);
  t.teardown(() => { b2.child.kill('SIGKILL'); });
  const url2 = `mqtt://127.0.0.1:${b2.port}`;
  const refused = await connectDevice(url2, creds.get(victim)!);
  t.equal(refused.code, 5, 'the revoked device is refused after the restart (CONNACK 5)');
  const again: MqttClient[] = [];
  const second = await pool(ids.filter((id) => id !== victim), 50, async (id) => {
    const c = await connectDevice(url2, creds.get(id)!);
    if (c.client) again.push(c.client);
    return c.code;
  });
  const bad = second.filter((c) => c !== 0);
  t.equal(bad.length, 0, `every other device (${DEVICES - 1}) reconnected${bad.length ? `: codes ${JSON.stringify(bad.slice(0, 10))}` : ''}`);
  for (const c of again) c.end(true);

  b2.child.kill('SIGTERM');
  const exit2 = await b2.exited;
  t.equal(exit2.code, 0, 'the restarted broker shuts down cleanly on SIGTERM');
  const sq = new Database(db, { readonly: true });
  t.teardown(() => sq.close());
  t.equal(sq.pragma('integrity_check', { simple: true }), 'ok', 'PRAGMA integrity_check is ok');
  t.equal((sq.prepare(`SELECT count(*) AS n FROM devices WHERE status = 'revoked'`).get() as { n: number }).n, 1, 'exactly one device revoked');
  t.equal((sq.prepare(`SELECT count(*) AS n FROM devices`).get() as { n: number }).n, DEVICES, 'no device lost');
  const logs = b1.output() + b2.output();
  t.notMatch(logs, /database is locked|SQLITE_BUSY|SQLITE_CORRUPT/, 'no lock or corruption errors in the broker logs');
});
