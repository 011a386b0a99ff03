// Registry contention (SPEC "Bad input and faults": a registry locked by another
// writer): a batch provisioning process and a revoking process write while the
// broker answers renewals. No SQLITE_BUSY reaches anyone; no write is lost.
import t from 'tap';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { connectDevice, startTestBroker } from './helpers/broker.js';
import { hasCli, pool, runCli, runNode, SOAK, sleep, type ChildResult } from './helpers/hostile-util.js';

const BATCH = SOAK ? 20_000 : 5000;
const RENEWERS = 200;
const VICTIMS = SOAK ? 500 : 100;
const CLI_VICTIMS = 5; // of those, revoked one CLI process each (a Node start-up each); the rest by one looping process
const MIN_RENEWALS_EACH = 3;
const LOCKED = /database is locked|SQLITE_BUSY|SQLITE_LOCKED/i;

t.test(`batch of ${BATCH} + ${VICTIMS} revocations while ${RENEWERS} devices renew`, async (t) => {
  const tb = await startTestBroker({ renewBurst: 1_000_000, renewPerSec: 1_000_000, deviceConnectBurst: 1000, deviceConnectPerSec: 100 });
  t.teardown(() => tb.close());
  const work = mkdtempSync(join(tmpdir(), 'credbroker-contention-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const renewerIds = Array.from({ length: RENEWERS }, (_, i) => `rn-${i}`);
  const victimIds = Array.from({ length: VICTIMS }, (_, i) => `vic-${i}`);
  const renewers = await tb.provision(renewerIds);
  await tb.provision(victimIds);
  const preProvisioned = RENEWERS + VICTIMS;

  // Renewal clients: connected, subscribed to their token topics.
  const clients = new Map<string, MqttClient>();
  const pending = new Map<string, (answer: { kind: string; code?: string }) => void>();
  await pool(renewers, 50, async (r) => {
    const c = await connectDevice(tb.url, r);
    if (!c.client) throw new Error(`renewer ${r.deviceId} refused: ${c.code}`);
    c.client.on('message', (topic, payload) => {
      const body = JSON.parse(payload.toString()) as { requestId: string; code?: string };
      pending.get(body.requestId)?.({ kind: topic.endsWith('/accepted') ? 'accepted' : 'rejected', code: body.code });
      pending.delete(body.requestId);
    });
    await c.client.subscribeAsync(`$devices/${r.deviceId}/token/+`, { qos: 1 });
    clients.set(r.deviceId, c.client);
  });
  t.equal(clients.size, RENEWERS, 'all renewers connected');

  let accepted = 0;
  const rejected = new Map<string, number>();
  let timeouts = 0;
  let maxLatency = 0;
  let seq = 0;
  let writersDone = false;
  const deadline = Date.now() + (SOAK ? 600_000 : 90_000);
  const renewLoop = async (id: string) => {
    let n = 0;
    while ((!writersDone || n < MIN_RENEWALS_EACH) && Date.now() < deadline) {
      const requestId = `r${seq++}`;
      const t0 = performance.now();
      const answer = await new Promise<{ kind: string; code?: string } | null>((resolve) => {
        const timer = setTimeout(() => { pending.delete(requestId); resolve(null); }, 15_000);
        pending.set(requestId, (a) => { clearTimeout(timer); resolve(a); });
        clients.get(id)!.publish(`$devices/${id}/token/renew`, JSON.stringify({ requestId }), { qos: 1 });
      });
      maxLatency = Math.max(maxLatency, performance.now() - t0);
      if (answer === null) timeouts++;
      else if (answer.kind === 'accepted') accepted++;
      else rejected.set(answer.code ?? '?', (rejected.get(answer.code ?? '?') ?? 0) + 1);
      n++;
      await sleep(50);
    }
  };

  // The writers, each in its own process.
  const csv = join(work, 'batch.csv');
  writeFileSync(csv, `id\n${Array.from({ length: BATCH }, (_, i) => `batch-${i}`).join('\n')}\n`);
  const outDir = join(work, 'out');
  const childOutput: ChildResult[] = [];
  const provisioner = (hasCli()
    ? runCli(['provision', '--batch', csv, '--profile', 'sensor', '--out', outDir, '--db', tb.db, '--broker-url', tb.url], { timeoutMs: 300_000 })
    : runNode(`import { openIssuer, provisionDevices } from './dist/provisioning/index.js';
        const issuer = await openIssuer(process.argv[1]);
        const rows = Array.from({ length: Number(process.argv[2]) }, (_, i) => ({ line: i + 2, id: 'batch-' + i }));
        const r = await provisionDevices(issuer, rows, { profile: 'sensor', brokerUrl: 'mqtt://127.0.0.1', chunkSize: 500 });
        issuer.reg.close(); console.log(r.provisioned.length);`, { args: [tb.db, String(BATCH)], timeoutMs: 300_000 })
  ).then((r) => { childOutput.push(r); return r; });
  const revoker = (async () => {
    const results: ChildResult[] = [];
    const loopIds = hasCli() ? victimIds.slice(CLI_VICTIMS) : victimIds;
    const loop = runNode(`import { openRegistry } from './dist/registry/index.js'; import { revokeDevices } from './dist/operations/index.js';
        const reg = await openRegistry(process.argv[1]);
        for (const id of JSON.parse(process.argv[2])) { await revokeDevices(reg, [id], 'contention test'); await new Promise((r) => setTimeout(r, 20)); }
        await reg.close();`, { args: [tb.db, JSON.stringify(loopIds)], timeoutMs: 300_000 });
    if (hasCli()) {
      for (const id of victimIds.slice(0, CLI_VICTIMS)) results.push(await runCli(['revoke', id, '--reason', 'contention test', '--db', tb.db], { timeoutMs: 60_000 }));
    }
    results.push(await loop);
    childOutput.push(...results);
    return results;
  })();

  const t0 = performance.now();
  const renewing = Promise.all(renewerIds.map(renewLoop));
  const [prov, revs] = await Promise.all([provisioner, revoker]);
  const writersSeconds = (performance.now() - t0) / 1000;
  writersDone = true;
  await renewing;
  await sleep(500); // the broker's audit buffer flushes every 250 ms

  t.comment(`writers finished in ${writersSeconds.toFixed(1)} s; renewals accepted ${accepted}, rejected ${JSON.stringify(Object.fromEntries(rejected))}, timeouts ${timeouts}, slowest renewal ${maxLatency.toFixed(0)} ms`);
  t.equal(prov.code, 0, `the provisioning process exited 0 ${prov.stderr.slice(0, 500)}`);
  t.ok(revs.every((r) => r.code === 0), `every revoking process exited 0 ${revs.map((r) => r.stderr).join('').slice(0, 500)}`);
  t.equal(rejected.get('ERR_INTERNAL') ?? 0, 0, 'no renewal answered ERR_INTERNAL');
  t.equal(rejected.size, 0, 'no renewal rejected at all');
  t.equal(timeouts, 0, 'every renewal was answered');
  t.ok(accepted >= RENEWERS * MIN_RENEWALS_EACH, `${accepted} renewals accepted`);
  const lockedLines = childOutput.flatMap((r) => `${r.stdout}\n${r.stderr}`.split('\n')).filter((l) => LOCKED.test(l));
  t.same(lockedLines.slice(0, 5), [], 'no child process printed a lock error');
  const { brokerLogLines } = await import('./helpers/broker.js');
  t.same(brokerLogLines.filter((l) => LOCKED.test(l)).slice(0, 5), [], 'no broker log line mentions a lock error');
  t.same(brokerLogLines.filter((l) => /"level":50/.test(l)).slice(0, 5), [], 'no error-level broker log line');

  const sq = new Database(tb.db, { readonly: true });
  t.teardown(() => sq.close());
  const count = (sql: string) => (sq.prepare(sql).get() as { n: number }).n;
  t.equal(count('SELECT count(*) AS n FROM devices'), preProvisioned + BATCH, 'every device is in the registry');
  t.equal(count(`SELECT count(*) AS n FROM devices WHERE status = 'revoked'`), VICTIMS, 'every revocation is in the registry');
  t.equal(count(`SELECT count(*) AS n FROM changes WHERE kind = 'device_revoked'`), VICTIMS, 'one change-feed entry per revocation');
  t.equal(count('SELECT count(*) AS n FROM tokens'), preProvisioned + BATCH + accepted, 'token rows = provisioned + renewals accepted');
  t.equal(count(`SELECT count(*) AS n FROM audit WHERE action = 'token.renew'`), accepted, 'one audit row per accepted renewal');
  t.equal(count('SELECT count(*) AS n FROM refresh_credentials'), preProvisioned + BATCH, 'one refresh credential per device');
  if (hasCli()) t.equal(readdirSync(outDir).length, BATCH, 'one credentials file per batch device');
  t.equal(sq.pragma('integrity_check', { simple: true }), 'ok', 'integrity_check ok');
  for (const c of clients.values()) c.end(true);
});
