import t from 'tap';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import { jwtPayload, runCli, spawnCli } from './helpers/cli.js';
import { deviceCounter } from './helpers/device-count.js';
import { sharedPostgres } from './helpers/postgres.js';

const N = 20_000;

/** The registry's tables read from outside, by SQL the two engines share: count(*) queries and (jti|hash, device_id) pairs. */
interface Outside {
  count(sql: string): Promise<number>;
  pairs(sql: string): Promise<[string, string][]>;
  close(): Promise<void>;
}

async function outside(engine: 'sqlite' | 'postgres', db: string): Promise<Outside> {
  if (engine === 'sqlite') {
    const conn = new Database(db, { readonly: true });
    return {
      count: async (sql) => conn.prepare(sql).pluck().get() as number,
      pairs: async (sql) => conn.prepare(sql).raw().all() as [string, string][],
      close: async () => { conn.close(); },
    };
  }
  const c = new pg.Client({ connectionString: db });
  await c.connect();
  return {
    count: async (sql) => Number(((await c.query({ text: sql, rowMode: 'array' })).rows[0] as unknown[])[0]),
    pairs: async (sql) => (await c.query({ text: sql, rowMode: 'array' })).rows as [string, string][],
    close: () => c.end(),
  };
}

for (const engine of ['sqlite', 'postgres'] as const) t.test(`${engine}: a batch killed part way and run again: every device provisioned exactly once`, async (t) => {
  const dir = t.testdir();
  const db = engine === 'sqlite' ? join(dir, 'registry.db') : await (await sharedPostgres()).newDatabase();
  // Polled every few ms while the batch runs.
  const counter = await deviceCounter(db);
  t.teardown(() => counter.close());
  const count = () => counter.count();
  const out = join(dir, 'creds');
  const batch = join(dir, 'batch.csv');
  writeFileSync(batch, `id\n${Array.from({ length: N }, (_, k) => `crash-${String(k).padStart(5, '0')}`).join('\n')}\n`);
  const init = await runCli(['init', '--db', db]);
  t.equal(init.code, 0, `init: ${init.stderr}`);
  const args = ['provision', '--batch', batch, '--profile', 'sensor', '--out', out, '--db', db];

  // 1. start the batch and SIGKILL it once some (not all) devices are committed
  const child = spawnCli(args);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // kill somewhere in the first half (varies between runs: right after a commit, or mid-chunk)
  const target = 1 + Math.floor(Math.random() * (N / 2));
  let seen = -1;
  let done = false;
  void exited.then(() => { done = true; });
  while (!done) {
    seen = await count();
    if (seen >= target && seen < N) {
      child.kill('SIGKILL');
      break;
    }
    await sleep(5);
  }
  const first = await exited;
  t.equal(first.signal, 'SIGKILL', `the first run was killed part way (${seen} devices committed when seen; stderr: ${stderr})`);
  const atKill = await count();
  t.ok(atKill > 0 && atKill < N, `killed with ${atKill} of ${N} devices committed`);

  // 2. the same command again finishes the batch
  const second = await runCli(args);
  t.equal(second.code, 0, second.stderr);
  t.match(second.stdout, new RegExp(`provisioned ${(N - atKill).toLocaleString('en-US')}, skipped \\(already provisioned\\) ${atKill.toLocaleString('en-US')}, invalid 0`));

  // 3. the invariants
  const files = readdirSync(out);
  t.same(files.filter((f) => !f.endsWith('.json')), [], 'no temp or lock files left behind');
  t.equal(files.length, N, `${N} credentials files`);

  const conn = await outside(engine, db);
  t.teardown(() => conn.close());
  t.equal(await conn.count('SELECT count(*) FROM devices'), N, `${N} devices`);
  if (engine === 'sqlite') t.equal(new Database(db, { readonly: true }).pragma('integrity_check', { simple: true }), 'ok', 'integrity_check = ok');
  t.equal(await conn.count('SELECT count(*) FROM tokens'), N, 'one token row per device (no second set minted)');
  t.equal(await conn.count('SELECT count(DISTINCT device_id) FROM tokens'), N);
  t.equal(await conn.count('SELECT count(*) FROM refresh_credentials'), N, 'one refresh credential row per device');
  t.equal(await conn.count('SELECT count(DISTINCT device_id) FROM refresh_credentials'), N);
  t.equal(await conn.count(`SELECT count(*) FROM audit WHERE action = 'device.provision'`), N, `${N} device.provision audit rows`);

  const tokenOwner = new Map(await conn.pairs('SELECT jti, device_id FROM tokens'));
  const refreshOwner = new Map(await conn.pairs('SELECT hash, device_id FROM refresh_credentials'));
  let jtiOk = 0;
  let refreshOk = 0;
  for (const f of files) {
    const c = JSON.parse(readFileSync(join(out, f), 'utf8')) as { deviceId: string; accessToken: string; refreshCredential: string };
    const id = f.slice(0, -'.json'.length);
    if (c.deviceId === id && tokenOwner.get(jwtPayload(c.accessToken).jti as string) === id) jtiOk++;
    if (refreshOwner.get(createHash('sha256').update(c.refreshCredential).digest('hex')) === id) refreshOk++;
  }
  t.equal(jtiOk, N, "each file's access token jti is in the tokens table for that device");
  t.equal(refreshOk, N, "each file's refresh credential is the one the registry holds (by hash) for that device");
});
