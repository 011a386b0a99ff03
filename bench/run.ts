/**
 * `npm run bench`: every benchmark, each figure the median of >= 3 runs and set
 * against a baseline measured in the same run (plain aedes, or one raw
 * node:crypto verify). Prints a table, then the full results as JSON (nothing is
 * written into the repository).
 *
 * Environment:
 *   BENCH_ONLY=bulk,verify,connect,gc,storm,warmstorm,throughput,forward,memory,revocation,limits,patches,provision,cluster,busseal,postgres   subset
 *   BENCH_WORKERS=1,2,4,8    worker counts of the cluster section (serve --workers N --bus; default 1,2); when given,
 *                            throughput and RSS per idle connection are measured at every count too, beside Mosquitto
 *   BENCH_LOAD_PROCS=N       load-generator processes of the cluster section (default: half the cores, 2 to 8)
 *   BENCH_MEMORY_CONNS=10000 idle connections (one subscription each) of the memory section
 *   BENCH_RUNS=3             runs per figure (minimum 3; CONNECT rate and throughput take at least 5 paired runs)
 *   BENCH_CPU_PROF=DIR       write V8 CPU profiles of the credbroker children to DIR
 *   BENCH_NO_MOSQUITTO=1     skip the Mosquitto column even when it is installed
 *   BENCH_GC_FLAGS="..."     the V8 heap flags the gc section sets against none (default --max-semi-space-size=64)
 */
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { planPatches } from '../broker/aedes-patches/load.js';
import { benchAuthenticateHook } from './authenticate.js';
import { benchBusSeal } from './bus-seal.js';
import { benchCluster, broadcastKind, SINGLE, workersKind } from './cluster.js';
import { benchConnectRate } from './connect-rate.js';
import { benchForward } from './forward.js';
import { benchGc } from './gc.js';
import { createFixture } from './lib/fixture.js';
import { benchLimitsCost } from './limits-cost.js';
import { onOffRows } from './lib/on-off.js';
import { mosquittoPath, prepareMosquitto } from './lib/mosquitto.js';
import { fmt, median, now, ratio, table, verdict, type Row } from './lib/stats.js';
import type { Targets } from './lib/targets.js';
import { benchMemory } from './memory.js';
import { benchPatches } from './patches.js';
import { benchProvision } from './provision.js';
import { benchReconnectStorm } from './reconnect-storm.js';
import { benchRegistryBackends } from './registry-backends.js';
import { benchRegistryBulk, bulkMedians } from './registry-bulk.js';
import { benchRevocation } from './revocation-latency.js';
import { benchThroughput, type ThroughputMode } from './throughput.js';
import { benchWarmStorm } from './warm-storm.js';
import { benchVerify } from './verify.js';

const only = new Set((process.env.BENCH_ONLY ?? 'provision,bulk,verify,connect,gc,storm,warmstorm,throughput,forward,memory,revocation,limits,patches,cluster,busseal,postgres').split(',').map((s) => s.trim()));
const runs = Math.max(3, Number(process.env.BENCH_RUNS ?? 3) || 3);
// At least five paired runs for the CONNECT and publish figures: per-operation costs of a few µs
// make these the noisiest ratios on shared cores, and their targets are stated as medians of five.
const throughputRuns = Math.max(runs, 5);
const memoryConns = Math.max(100, Number(process.env.BENCH_MEMORY_CONNS ?? 10_000) || 10_000);
const t00 = now();
const log = (msg: string) => process.stderr.write(`[bench ${((now() - t00) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`);
const kib = (b: number | null | undefined) => (b === null || b === undefined || !Number.isFinite(b) ? 'n/a' : `${(b / 1024).toFixed(2)} KiB`);

/** Whether credbroker's brokers run aedes patched (broker/aedes-patches/): every credbroker figure depends on it. */
function aedesPatched(): boolean {
  return planPatches(dirname(fileURLToPath(import.meta.resolve('aedes')))).files !== null;
}

async function main(): Promise<void> {
  const started = now();
  const rows: Row[] = [];
  const json: Record<string, unknown> = { node: process.version, runs, aedesPatched: aedesPatched(), startedAt: new Date().toISOString() };

  /** Sections that threw: the run exits 1 after printing the others' rows. */
  const failed: string[] = [];
  /** Runs one benchmark; a failure becomes a row of its own instead of losing the whole table. */
  const section = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      log(`${name} failed: ${(err as Error).stack ?? err}`);
      failed.push(name);
      rows.push({ bench: name, metric: `FAILED: ${(err as Error).message.split('\n')[0]!.slice(0, 120)}`, credbroker: '', baseline: '', ratio: '', target: '', verdict: 'MISS' });
      json[`${name}Error`] = (err as Error).message;
    }
  };

  if (only.has('provision')) await section('provision', async () => {
    log('provisioning: a factory batch through the library and through the command line');
    const res = await benchProvision();
    json.provision = res;
    for (const [k, v] of Object.entries(res)) {
      if (typeof v === 'number' || typeof v === 'string') rows.push({ bench: 'provision', metric: k, credbroker: typeof v === 'number' ? fmt(v, v < 100 ? 2 : 0) : v, baseline: '', ratio: '', target: '', verdict: 'info' });
    }
  });

  if (only.has('bulk')) await section('bulk', async () => {
    const b = await benchRegistryBulk({ runs: Math.max(5, runs), log });
    json.bulk = b;
    const m = bulkMedians(b);
    const n = fmt(b.devices);
    rows.push({ bench: '11 bulk', metric: `factory batch devices/s (${n}, files written) into SQLite on tmpfs vs the same files alone`, credbroker: fmt(m.sqlite), baseline: fmt(m.filesOnly), ratio: ratio(m.sqlite / m.filesOnly), target: '≥ 10,000/s', verdict: verdict(m.sqlite >= 10_000) });
    rows.push({ bench: '11 bulk', metric: `factory batch devices/s (${n}, files written) into PostgreSQL vs into SQLite`, credbroker: fmt(m.postgres), baseline: fmt(m.sqlite), ratio: ratio(m.postgres / m.sqlite), target: '≥ 5,000/s or ≥ 1.00×', verdict: verdict(m.postgres >= 5_000 || m.postgres >= m.sqlite) });
    rows.push({ bench: '11 bulk', metric: `registry copy rows/s (${fmt(b.copy.rows)} rows) SQLite → PostgreSQL vs SQLite → SQLite`, credbroker: fmt(m.toPostgres), baseline: fmt(m.sqliteToSqlite), ratio: ratio(m.toPostgres / m.sqliteToSqlite), target: 'info', verdict: 'info' });
    rows.push({ bench: '11 bulk', metric: `registry copy rows/s (${fmt(b.copy.rows)} rows) PostgreSQL → SQLite vs SQLite → SQLite`, credbroker: fmt(m.toSqlite), baseline: fmt(m.sqliteToSqlite), ratio: ratio(m.toSqlite / m.sqliteToSqlite), target: 'info', verdict: 'info' });
  });

  // Each revocation measurement (one process; the cluster's) revokes 100 devices per run.
  const revocationBenches = Number(only.has('revocation')) + Number(only.has('cluster'));
  // 5,000 measured plus 300 whose CONNECTs warm a broker up without warming its verified-token cache for the measured ones;
  // the memory section connects its own devices after 200 warm-up ones; the gc section 5,000 fresh, then 5,000 more.
  const devices = Math.max(5300, only.has('memory') ? memoryConns + 200 : 0, only.has('gc') ? 10_000 : 0);
  log(`provisioning the benchmark registry (${(devices + 1 + 100 * runs * revocationBenches).toLocaleString('en-US')} devices)`);
  const fx = await createFixture({ devices, revocable: 100 * runs * revocationBenches });
  json.fixture = { devices: fx.devices.length + fx.revocable.length + 1, provisionMs: fx.provisionMs };
  let mosquitto = null;
  if (!process.env.BENCH_NO_MOSQUITTO && mosquittoPath()) {
    log('preparing Mosquitto (password file, ACL file)');
    try {
      mosquitto = prepareMosquitto(fx.dir, [...fx.devices, fx.observer].map((d) => ({ username: d.deviceId, password: d.accessToken })), [fx.observer.deviceId]);
    } catch (err) {
      log(`Mosquitto set-up failed, column skipped: ${(err as Error).message}`);
    }
  } else log('mosquitto not installed (or BENCH_NO_MOSQUITTO): column skipped');
  const t: Targets = { fx, mosquitto, cpuProfDir: process.env.BENCH_CPU_PROF || undefined };
  const mq = (s: string) => (mosquitto ? s : 'skip');

  try {
    let rawVerifyUs = NaN;
    if (only.has('verify') || only.has('connect')) await section('verify', async () => {
      log('1. token verify micro-benchmark');
      const v = await benchVerify(fx, runs);
      json.verify = v;
      rawVerifyUs = v.rawUs;
      rows.push({ bench: '1 verify', metric: 'verifyAccessToken µs/op (vs raw crypto.verify)', credbroker: fmt(v.oursUs, 1), baseline: fmt(v.rawUs, 1), ratio: ratio(v.oursOverRaw), target: 'info', verdict: 'info' });
      rows.push({ bench: '1 verify', metric: 'verifyAccessToken µs/op (vs jose.jwtVerify)', credbroker: fmt(v.oursUs, 1), baseline: fmt(v.joseUs, 1), ratio: ratio(v.oursOverJose), target: 'info', verdict: 'info' });
    });

    if (only.has('verify') || only.has('auth')) await section('auth hook', async () => {
      log('2b. authenticate hook in-process');
      const a = await benchAuthenticateHook(fx, runs);
      json.authenticateHook = a;
      rows.push({ bench: '2 auth hook', metric: 'authenticate hook µs/CONNECT in-process vs 1 raw verify', credbroker: fmt(a.hookUs, 1), baseline: fmt(a.rawUs, 1), ratio: ratio(a.ratio), target: '≤ 1.50×', verdict: verdict(a.ratio <= 1.5) });
    });

    if (only.has('connect')) await section('connect', async () => {
      log('2. CONNECT rate (5,000 fresh connections, 200 in flight)');
      const c = await benchConnectRate(t, rawVerifyUs, { runs: throughputRuns });
      json.connectRate = c;
      const k = c.kinds;
      rows.push({ bench: '2 connect', metric: `connects/s (${c.n}, ${c.inflight} in flight)`, credbroker: fmt(k.credbroker!.rate), baseline: fmt(k.aedes!.rate), mosquitto: mq(fmt(k.mosquitto?.rate ?? NaN)), ratio: ratio(c.ratio), target: 'info (the floor is the yardstick)', verdict: 'info' });
      rows.push({ bench: '2 connect', metric: 'broker CPU µs per CONNECT', credbroker: fmt(k.credbroker!.cpuPerConnectUs, 1), baseline: fmt(k.aedes!.cpuPerConnectUs, 1), mosquitto: mq(fmt(k.mosquitto?.cpuPerConnectUs ?? NaN, 1)), ratio: ratio(k.credbroker!.cpuPerConnectUs / k.aedes!.cpuPerConnectUs), target: 'info', verdict: 'info' });
      rows.push({ bench: '2 connect', metric: 'auth CPU added per CONNECT vs 1 raw verify (µs)', credbroker: fmt(c.authCpuUs, 1), baseline: fmt(c.rawVerifyUs, 1), ratio: ratio(c.authCpuOverRawVerify), target: '≤ 1.50×', verdict: verdict(c.authCpuOverRawVerify <= 1.5) });
      const floor = k['verify-floor']!;
      rows.push({ bench: '2 floor', metric: 'connects/s: aedes + bare raw-verify hook vs plain aedes', credbroker: fmt(floor.rate), baseline: fmt(k.aedes!.rate), ratio: ratio(c.floorRatio), target: 'info', verdict: 'info' });
      rows.push({ bench: '2 floor', metric: 'connects/s: credbroker vs aedes + bare raw-verify hook', credbroker: fmt(k.credbroker!.rate), baseline: fmt(floor.rate), ratio: ratio(c.overFloorRatio), target: '≥ 0.90×', verdict: verdict(c.overFloorRatio >= 0.9) });
      rows.push({ bench: '2 floor', metric: 'broker CPU µs/CONNECT added by the bare raw-verify hook', credbroker: fmt(c.floorCpuUs, 1), baseline: fmt(c.rawVerifyUs, 1), ratio: ratio(c.floorCpuUs / c.rawVerifyUs), target: 'info', verdict: 'info' });
      rows.push({ bench: '2 floor', metric: 'broker CPU µs/CONNECT credbroker adds over that hook', credbroker: fmt(c.overFloorCpuUs, 1), baseline: '', ratio: '', target: '≤ 60 µs', verdict: verdict(c.overFloorCpuUs <= 60) });
      const bad = Object.entries(k).filter(([, r]) => r.runs.some((x) => x.refused || x.errors));
      if (bad.length) log(`connect failures: ${bad.map(([n, r]) => `${n}: ${JSON.stringify(r.runs.map((x) => [x.refused, x.errors]))}`).join('; ')}`);
    });

    if (only.has('gc')) await section('gc', async () => {
      const flags = (process.env.BENCH_GC_FLAGS ?? '--max-semi-space-size=64').split(/\s+/).filter(Boolean);
      log(`2g. GC in a fresh broker: its first 5,000 CONNECTs vs the next 5,000, without and with ${flags.join(' ')} (${throughputRuns} pairs)`);
      const g = await benchGc(t, flags, { pairs: throughputRuns, log });
      json.gc = g;
      const w = g.without, f = g.with, what = flags.join(' ');
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
      const counts = (p: typeof w.fresh) => `${fmt(p.scavenges)} + ${fmt(p.markCompacts)}`;
      rows.push({ bench: '2g gc', metric: `broker CPU µs/CONNECT, first ${g.n} of a fresh process vs the next ${g.n}`, credbroker: fmt(w.fresh.cpuPerConnectUs, 1), baseline: fmt(w.warm.cpuPerConnectUs, 1), ratio: ratio(g.freshOverWarm), target: 'info', verdict: 'info' });
      rows.push({ bench: '2g gc', metric: '  GC pause µs/CONNECT, fresh vs warm', credbroker: fmt(w.fresh.gcPerConnectUs, 1), baseline: fmt(w.warm.gcPerConnectUs, 1), ratio: ratio(w.fresh.gcPerConnectUs / w.warm.gcPerConnectUs), target: 'info', verdict: 'info' });
      rows.push({ bench: '2g gc', metric: '  scavenges + mark-compacts, fresh vs warm', credbroker: counts(w.fresh), baseline: counts(w.warm), ratio: '', target: 'info', verdict: 'info' });
      rows.push({ bench: '2g gc', metric: `broker CPU µs/CONNECT of a fresh process, ${what} vs none`, credbroker: fmt(f.fresh.cpuPerConnectUs, 1), baseline: fmt(w.fresh.cpuPerConnectUs, 1), ratio: ratio(g.freshCpuRatio), target: 'info', verdict: 'info' });
      rows.push({ bench: '2g gc', metric: `  GC pause µs/CONNECT, fresh, ${what} vs none`, credbroker: fmt(f.fresh.gcPerConnectUs, 1), baseline: fmt(w.fresh.gcPerConnectUs, 1), ratio: ratio(f.fresh.gcPerConnectUs / w.fresh.gcPerConnectUs), target: 'info', verdict: 'info' });
      rows.push({ bench: '2g gc', metric: `  scavenges + mark-compacts, fresh, ${what} vs none`, credbroker: counts(f.fresh), baseline: counts(w.fresh), ratio: '', target: 'info', verdict: 'info' });
      rows.push({ bench: '2g gc', metric: `  RSS idle just started / after ${2 * g.n} CONNECTs, ${what} vs none`, credbroker: `${mib(f.idleRss)} / ${mib(f.afterRss)}`, baseline: `${mib(w.idleRss)} / ${mib(w.afterRss)}`, ratio: '', target: 'info', verdict: 'info' });
    });

    if (only.has('storm')) await section('storm', async () => {
      log('3. reconnect storm (5,000 at once)');
      const s = await benchReconnectStorm(t, { runs });
      json.storm = s;
      const k = s.kinds;
      rows.push({ bench: '3 storm', metric: `time to all ${s.n} connected (ms)`, credbroker: fmt(k.credbroker!.ms), baseline: fmt(k.aedes!.ms), mosquitto: mq(fmt(k.mosquitto?.ms ?? NaN)), ratio: ratio(s.timeRatio), target: 'all connected', verdict: verdict(k.credbroker!.allConnected) });
      rows.push({ bench: '3 storm', metric: `ListenOverflows during storms (${s.counterSource})`, credbroker: String(k.credbroker!.overflows), baseline: String(k.aedes!.overflows), mosquitto: mq(String(k.mosquitto?.overflows ?? 'n/a')), ratio: '', target: '0', verdict: verdict(k.credbroker!.overflows === 0) });
    });

    if (only.has('warmstorm')) await section('warm storm', async () => {
      log('3b. reconnect storm of devices whose tokens this broker has already accepted (5,000 at once, ≥ 5 paired runs)');
      const w = await benchWarmStorm(t, { runs });
      json.warmStorm = w;
      const k = w.kinds;
      rows.push({
        bench: '3b warm storm', metric: `reconnect storm of devices whose tokens this broker has already accepted: devices/s (${w.n} at once, ${k.credbroker!.runs.length} paired runs)`,
        credbroker: fmt(k.credbroker!.rate), baseline: fmt(k.aedes!.rate), mosquitto: mq(fmt(k.mosquitto?.rate ?? NaN)), ratio: ratio(w.ratio), target: '≥ 0.80×', verdict: verdict(w.ratio >= 0.8 && k.credbroker!.allConnected),
      });
      rows.push({ bench: '3b warm storm', metric: `  ListenOverflows during those storms (${w.counterSource})`, credbroker: String(k.credbroker!.overflows), baseline: String(k.aedes!.overflows), mosquitto: mq(String(k.mosquitto?.overflows ?? 'n/a')), ratio: '', target: '0', verdict: verdict(k.credbroker!.overflows === 0) });
      rows.push({ bench: '3b warm storm', metric: '  broker CPU µs per CONNECT in that storm', credbroker: fmt(k.credbroker!.cpuPerConnectUs, 1), baseline: fmt(k.aedes!.cpuPerConnectUs, 1), mosquitto: mq(fmt(k.mosquitto?.cpuPerConnectUs ?? NaN, 1)), ratio: ratio(k.credbroker!.cpuPerConnectUs / k.aedes!.cpuPerConnectUs), target: 'info', verdict: 'info' });
      const off = k['credbroker-no-cache']!;
      rows.push({ bench: '3b warm storm', metric: '  the same storm, credbroker with verifiedTokenCache 0 (every token verified again)', credbroker: fmt(off.rate), baseline: fmt(k.aedes!.rate), ratio: ratio(w.noCacheRatio), target: 'info', verdict: 'info' });
      rows.push({ bench: '3b warm storm', metric: '  credbroker devices/s, cache warm vs cache off', credbroker: fmt(k.credbroker!.rate), baseline: fmt(off.rate), ratio: ratio(w.cacheGain), target: 'info', verdict: 'info' });
      rows.push({ bench: '3b warm storm', metric: '  broker CPU µs per CONNECT, cache warm vs cache off', credbroker: fmt(k.credbroker!.cpuPerConnectUs, 1), baseline: fmt(off.cpuPerConnectUs, 1), ratio: ratio(k.credbroker!.cpuPerConnectUs / off.cpuPerConnectUs), target: 'info', verdict: 'info' });
      rows.push({ bench: '3b warm storm', metric: '  share of the storm answered from the verified-token cache (least of the runs)', credbroker: `${(w.hitShare * 100).toFixed(1)} %`, baseline: '', ratio: '', target: '100 %', verdict: verdict(w.hitShare === 1) });
    });

    if (only.has('throughput')) await section('throughput', async () => {
      const modes: ThroughputMode[] = [{ qos: 0, sink: 'subscriber' }, { qos: 0, sink: 'nowhere' }, { qos: 1, sink: 'subscriber' }, { qos: 1, sink: 'nowhere' }];
      const out = [];
      for (const m of modes) {
        log(`4. throughput QoS ${m.qos} → ${m.sink}`);
        const r = await benchThroughput(t, m, { runs: throughputRuns });
        out.push(r);
        const k = r.kinds;
        const incomplete = Object.entries(k).filter(([, x]) => !x.complete).map(([n]) => n);
        rows.push({
          bench: '4 throughput', metric: `QoS ${m.qos} msgs/s, ${r.publishers} pub → ${m.sink === 'subscriber' ? '1 sub (devices/#)' : 'nowhere'}${incomplete.length ? ` [incomplete: ${incomplete.join(',')}]` : ''}`,
          credbroker: fmt(k.credbroker!.rate), baseline: fmt(k.aedes!.rate), mosquitto: mq(fmt(k.mosquitto?.rate ?? NaN)), ratio: ratio(r.ratio), target: '≥ 0.95×', verdict: verdict(r.ratio >= 0.95),
        });
        rows.push({
          bench: '4 throughput', metric: `  QoS ${m.qos} → ${m.sink}: broker CPU µs per message`,
          credbroker: fmt(k.credbroker!.cpuPerMsgUs, 2), baseline: fmt(k.aedes!.cpuPerMsgUs, 2), mosquitto: mq(fmt(k.mosquitto?.cpuPerMsgUs ?? NaN, 2)), ratio: `${r.cpuOverUs >= 0 ? '+' : ''}${fmt(r.cpuOverUs, 2)} µs`, target: '≤ +0.50 µs', verdict: verdict(r.cpuOverUs <= 0.5),
        });
      }
      json.throughput = out;
    });

    if (only.has('forward')) await section('forward', async () => {
      log('7. delivery ACL check (authorizeForward hook in-process)');
      const f = await benchForward(fx, runs);
      json.forward = f;
      // aedes' own CPU per delivered message, QoS 0 to one subscriber, when measured in this run.
      const tp = (json.throughput as { mode: { qos: number; sink: string }; kinds: Record<string, { cpuPerMsgUs: number }> }[] | undefined)
        ?.find((r) => r.mode.qos === 0 && r.mode.sink === 'subscriber')?.kinds.aedes?.cpuPerMsgUs;
      const share = tp ? f.checkUs / tp : NaN;
      rows.push({ bench: '7 forward', metric: 'authorizeForward µs/delivery, ACL check on vs off', credbroker: fmt(f.onUs, 3), baseline: fmt(f.offUs, 3), ratio: ratio(f.onUs / f.offUs), target: 'info', verdict: 'info' });
      rows.push({
        bench: '7 forward', metric: 'ACL check µs/delivery (persistent or re-ACLed sessions only) vs aedes CPU/msg', credbroker: fmt(f.checkUs, 3), baseline: tp ? fmt(tp, 2) : 'n/a (throughput not run)',
        ratio: Number.isFinite(share) ? `${(share * 100).toFixed(1)} %` : 'n/a', target: 'info', verdict: 'info',
      });
    });

    if (only.has('memory')) await section('memory', async () => {
      log(`5. memory per idle connection (${memoryConns.toLocaleString('en-US')}, one subscription each; heap snapshots on the last run)`);
      const m = await benchMemory(t, { runs, n: memoryConns, breakdown: true });
      json.memory = m;
      const k = m.kinds;
      rows.push({ bench: '5 memory', metric: `RSS per idle connection (${m.n}, 1 sub each, fresh broker)`, credbroker: kib(k.credbroker!.rssPerConn), baseline: kib(k.aedes!.rssPerConn), mosquitto: mq(kib(k.mosquitto?.rssPerConn)), ratio: ratio(m.rssRatio), target: '≤ 10 KiB (6)', verdict: verdict(k.credbroker!.rssPerConn <= 10 * 1024) });
      rows.push({ bench: '5 memory', metric: '  RSS per idle connection over plain aedes', credbroker: `+${kib(m.extraRssPerConn)}`, baseline: '', ratio: '', target: 'info', verdict: 'info' });
      rows.push({ bench: '5 memory', metric: '  V8 heap per idle connection', credbroker: kib(k.credbroker!.heapPerConn), baseline: kib(k.aedes!.heapPerConn), ratio: `+${kib(m.extraHeapPerConn)}`, target: 'info', verdict: 'info' });
      const ab = k.aedes?.breakdown;
      for (const r of k.credbroker!.breakdown ?? []) {
        const base = ab?.find((x) => x.name === r.name);
        rows.push({ bench: '5 memory', metric: `  heap/conn: ${r.name}${Number.isFinite(r.count) ? ` (${r.count.toFixed(2)} per conn)` : ''}`, credbroker: `${fmt(r.bytes)} B`, baseline: base ? `${fmt(base.bytes)} B` : '', ratio: '', target: 'info', verdict: 'info' });
      }
      // The same heap by owner (bench/lib/heap-owners.ts).
      for (const r of k.credbroker!.owners ?? []) {
        const base = k.aedes?.owners?.find((x) => x.owner === r.owner);
        rows.push({ bench: '5 memory', metric: `  heap/conn by owner: ${r.owner}`, credbroker: `${fmt(r.bytes)} B`, baseline: base ? `${fmt(base.bytes)} B` : '', ratio: '', target: 'info', verdict: 'info' });
      }
    });

    if (only.has('revocation')) await section('revocation', async () => {
      log('6. revocation latency (100 devices, one revoke process)');
      const r = await benchRevocation(t, { runs });
      json.revocation = r;
      rows.push({ bench: '6 revocation', metric: `p50 revoke-exit → socket close (ms), ${r.devices} devs`, credbroker: fmt(r.p50, 1), baseline: '', ratio: '', target: '—', verdict: 'info' });
      rows.push({ bench: '6 revocation', metric: `p99 revoke-exit → socket close (ms)`, credbroker: fmt(r.p99, 1), baseline: '', ratio: '', target: '≤ 1000 (250)', verdict: verdict(r.p99 <= 1000) });
      rows.push({ bench: '6 revocation', metric: 'p99 revoke-spawn → socket close (ms; incl. Node start-up)', credbroker: fmt(r.p99FromSpawn, 1), baseline: '', ratio: '', target: 'info', verdict: 'info' });
      rows.push({ bench: '6 revocation', metric: `revoke process run time (ms) via ${r.via}`, credbroker: fmt(r.processMs), baseline: '', ratio: '', target: 'info', verdict: 'info' });
    });

    if (only.has('limits')) await section('limits', async () => {
      const l = await benchLimitsCost(t, { pairs: throughputRuns, log });
      json.limitsCost = l;
      rows.push(...onOffRows('8 limits', 'limits on vs off', l, 0.02));
      const c = l.connect;
      // What the limit code itself costs per operation (in-process, CPU time), against the broker's CPU per operation without limits.
      const u = l.micro;
      const perMsg = u.parseUs + u.admitBehindUs;
      const msgCpu = median(l.throughput[0]!.off.map((x) => x.cpuPerMsgUs));
      const connCpu = median(c.off.map((x) => x.cpuPerConnectUs));
      const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(2)} %` : 'n/a');
      rows.push({ bench: '8 limits', metric: `guard + queue check µs/message in-process (parse ${fmt(u.parseUs, 3)}, queue ${fmt(u.admitBehindUs, 3)}) vs broker CPU/msg`, credbroker: fmt(perMsg, 3), baseline: fmt(msgCpu, 2), ratio: pct(perMsg / msgCpu), target: '≤ 2 %', verdict: verdict(perMsg / msgCpu <= 0.02) });
      rows.push({ bench: '8 limits', metric: 'guard set-up µs/connection in-process vs broker CPU/CONNECT', credbroker: fmt(u.connectUs, 2), baseline: fmt(connCpu, 1), ratio: pct(u.connectUs / connCpu), target: '≤ 2 %', verdict: verdict(u.connectUs / connCpu <= 0.02) });
    });

    if (only.has('patches')) await section('patches', async () => {
      const p = await benchPatches(t, { pairs: throughputRuns, log });
      json.patches = p;
      rows.push(...onOffRows('8p patches', 'aedes patched vs unpatched', p, 0.02));
    });

    if (only.has('cluster')) await section('cluster', async () => {
      const c = await benchCluster(t, { runs, log, revocationFirst: only.has('revocation') ? 100 * runs : 0 });
      json.cluster = c;
      const single = c.kinds[SINGLE]!;
      const cpu = (k: { cpuPerConnectUs: number; redisCpuPerConnectUs: number }) => k.cpuPerConnectUs + k.redisCpuPerConnectUs;
      const head = `${c.n} CONNECTs, ${c.inflight} in flight from ${c.loadProcs} processes, ${c.cpus} cores`;
      rows.push({ bench: '9 cluster', metric: `connects/s, ${SINGLE} (${head})`, credbroker: fmt(single.rate), baseline: '', mosquitto: mq(fmt(c.kinds.mosquitto?.rate ?? NaN)), ratio: '', target: 'info', verdict: 'info' });
      let previous: { name: string; rate: number } | null = null;
      for (const w of c.workerCounts) {
        const name = workersKind(w);
        const k = c.kinds[name]!;
        // One worker on a bus against today's process; each larger count against the one before it (paired runs).
        const [base, r, target] = previous === null
          ? [single.rate, c.ratioToSingle[name]!, '≥ 0.90× (noise)']
          : [previous.rate, c.ratioToPrevious[name]!, `≥ 0.90× ${previous.name}`];
        rows.push({ bench: '9 cluster', metric: `connects/s, ${name}`, credbroker: fmt(k.rate), baseline: fmt(base), mosquitto: mq(fmt(c.kinds.mosquitto?.rate ?? NaN)), ratio: ratio(r), target, verdict: verdict(r >= 0.9) });
        rows.push({ bench: '9 cluster', metric: `  broker CPU µs/CONNECT, ${name}: all (workers; primary; Redis)`, credbroker: `${fmt(cpu(k), 0)} (${fmt(k.cpuPerConnectUs - k.primaryCpuPerConnectUs, 0)}; ${fmt(k.primaryCpuPerConnectUs, 0)}; ${fmt(k.redisCpuPerConnectUs, 0)})`, baseline: fmt(single.cpuPerConnectUs, 0), mosquitto: mq(fmt(c.kinds.mosquitto?.cpuPerConnectUs ?? NaN, 0)), ratio: ratio(cpu(k) / single.cpuPerConnectUs), target: '≤ 1.25× (16 cores)', verdict: 'info' });
        if (k.runs.some((x) => x.refused || x.errors)) log(`cluster connect failures (${name}): ${JSON.stringify(k.runs.map((x) => [x.refused, x.errors]))}`);
        previous = { name, rate: k.rate };
      }
      const most = c.workerCounts[c.workerCounts.length - 1]!;
      const bc = c.kinds[broadcastKind(most)];
      const targeted = c.kinds[workersKind(most)]!;
      if (bc) {
        rows.push({ bench: '9 cluster', metric: `connects/s, ${most} workers: targeted takeover vs the old broadcast`, credbroker: fmt(targeted.rate), baseline: fmt(bc.rate), ratio: ratio(targeted.rate / bc.rate), target: 'info', verdict: 'info' });
        rows.push({ bench: '9 cluster', metric: `  Redis CPU µs/CONNECT: targeted vs broadcast`, credbroker: fmt(targeted.redisCpuPerConnectUs, 1), baseline: fmt(bc.redisCpuPerConnectUs, 1), ratio: ratio(targeted.redisCpuPerConnectUs / bc.redisCpuPerConnectUs), target: 'info', verdict: 'info' });
        rows.push({ bench: '9 cluster', metric: `  workers CPU µs/CONNECT: targeted vs broadcast`, credbroker: fmt(targeted.cpuPerConnectUs, 1), baseline: fmt(bc.cpuPerConnectUs, 1), ratio: ratio(targeted.cpuPerConnectUs / bc.cpuPerConnectUs), target: 'info', verdict: 'info' });
      }
      if (c.kinds.mosquitto) rows.push({ bench: '9 cluster', metric: `connects/s, ${workersKind(most)} vs Mosquitto (password file), same load`, credbroker: fmt(targeted.rate), baseline: fmt(c.kinds.mosquitto.rate), ratio: ratio(targeted.rate / c.kinds.mosquitto.rate), target: '≥ 1.5× (8 workers, 16 cores)', verdict: 'info' });
      for (const tp of c.throughput) {
        const incomplete = !tp.single.complete || !tp.cluster.complete ? ' [incomplete]' : '';
        rows.push({ bench: '9 cluster', metric: `QoS ${tp.mode.qos} msgs/s → 1 sub, 8 pubs over ${tp.workers} workers vs one process${incomplete}`, credbroker: fmt(tp.cluster.rate), baseline: fmt(tp.single.rate), mosquitto: tp.mosquitto ? fmt(tp.mosquitto.rate) : '', ratio: ratio(tp.ratio), target: tp.mode.qos === 0 ? '≥ 1× (16 cores)' : 'info', verdict: 'info' });
        // The kernel hands the publishers' connections out in turn: (N-1)/N of the messages cross workers.
        rows.push({ bench: '9 cluster', metric: `  QoS ${tp.mode.qos}: CPU µs/msg, workers + Redis (Redis alone) vs one process; ${tp.workers - 1}/${tp.workers} of msgs cross workers`, credbroker: `${fmt(tp.cluster.cpuPerMsgUs + tp.cluster.redisCpuPerMsgUs, 2)} (${fmt(tp.cluster.redisCpuPerMsgUs, 2)})`, baseline: fmt(tp.single.cpuPerMsgUs, 2), mosquitto: tp.mosquitto ? fmt(tp.mosquitto.cpuPerMsgUs, 2) : '', ratio: ratio((tp.cluster.cpuPerMsgUs + tp.cluster.redisCpuPerMsgUs) / tp.single.cpuPerMsgUs), target: 'info', verdict: 'info' });
      }
      if (c.memory) {
        const one = c.memory.kinds[SINGLE]!;
        const mm = c.memory.kinds.mosquitto;
        rows.push({ bench: '9 cluster', metric: `RSS per idle connection (${fmt(c.memory.n)}, 1 sub each), ${SINGLE}`, credbroker: kib(one.rssPerConn), baseline: '', mosquitto: mm ? kib(mm.rssPerConn) : '', ratio: '', target: 'info', verdict: 'info' });
        for (const w of c.workerCounts) {
          const k = c.memory.kinds[workersKind(w)]!;
          rows.push({ bench: '9 cluster', metric: `  RSS per idle connection, ${workersKind(w)}: node + Redis (Redis alone)`, credbroker: `${kib(k.rssPerConn + k.redisRssPerConn)} (${kib(k.redisRssPerConn)})`, baseline: kib(one.rssPerConn), mosquitto: mm ? kib(mm.rssPerConn) : '', ratio: ratio((k.rssPerConn + k.redisRssPerConn) / one.rssPerConn), target: 'info', verdict: 'info' });
        }
      }
      const rv = c.revocation;
      rows.push({ bench: '9 cluster', metric: `p50 revoke-exit → socket close (ms), ${rv.devices} devs over ${rv.workers} workers`, credbroker: fmt(rv.p50, 1), baseline: '', ratio: '', target: '—', verdict: 'info' });
      rows.push({ bench: '9 cluster', metric: `p99 revoke-exit → socket close (ms), ${rv.workers} workers`, credbroker: fmt(rv.p99, 1), baseline: '', ratio: '', target: '≤ 1000 (250)', verdict: verdict(rv.p99 <= 1000) });
    });

    if (only.has('busseal')) await section('busseal', async () => {
      // Paired runs, at least 5: sealed and unsealed back to back.
      const s = await benchBusSeal(t, { runs: Math.max(5, runs), log });
      json.busSeal = s;
      const pct = (x: number) => `${x >= 1 ? '+' : ''}${((x - 1) * 100).toFixed(1)} %`;
      const inc = s.complete ? '' : ' [incomplete]';
      for (const q of ['qos0', 'qos1'] as const) {
        rows.push({ bench: '9b bus seal', metric: `CPU µs per cross-worker message, ${q === 'qos0' ? 'QoS 0' : 'QoS 1'} (2 brokers + Redis, 8 pub → 1 sub on the other broker): sealed vs unsealed${inc}`, credbroker: fmt(median(s.msgCpuUs[q].sealed), 2), baseline: fmt(median(s.msgCpuUs[q].unsealed), 2), ratio: pct(s.msgCpuRatio[q]), target: '≤ +3 %', verdict: verdict(s.complete && s.msgCpuRatio[q] <= 1.03) });
      }
      const sealOpen = median(s.sealOpenUs);
      const unsealedMsg = median(s.msgCpuUs.qos0.unsealed);
      rows.push({ bench: '9b bus seal', metric: '  of which seal + open alone, µs/message in-process, vs unsealed QoS 0 CPU/message', credbroker: fmt(sealOpen, 2), baseline: fmt(unsealedMsg, 2), ratio: `${((sealOpen / unsealedMsg) * 100).toFixed(1)} %`, target: 'info', verdict: 'info' });
      rows.push({ bench: '9b bus seal', metric: `connects/s, a broker on the bus (${s.connects} CONNECTs): sealed vs unsealed`, credbroker: fmt(median(s.connectRate.sealed)), baseline: fmt(median(s.connectRate.unsealed)), ratio: pct(s.connectRateRatio), target: '≥ −3 %', verdict: verdict(s.connectRateRatio >= 0.97) });
    });

    if (only.has('postgres')) await section('postgres', async () => {
      const b = await benchRegistryBackends(t, { runs, log });
      json.registryBackends = b;
      const p = b.provision;
      rows.push({ bench: '10 registry', metric: `factory batch devices/s (${fmt(p.devices)}, files written): PostgreSQL vs SQLite`, credbroker: fmt(p.postgresRate), baseline: fmt(p.sqliteRate), ratio: ratio(p.postgresRate / p.sqliteRate), target: '≥ 5,000/s', verdict: verdict(p.postgresRate >= 5000) });
      const c = b.copy;
      rows.push({ bench: '10 registry', metric: `registry copy ${fmt(c.devices)} devices SQLite → PostgreSQL → SQLite (s)`, credbroker: `${fmt(c.toPostgresS, 1)} + ${fmt(c.backToSqliteS, 1)}`, baseline: '', ratio: '', target: 'counts equal, token verifies', verdict: verdict(c.countsEqual && c.tokenVerifies) });
      const r = b.revocation;
      rows.push({ bench: '10 registry', metric: `p99 revoke-exit → socket close via LISTEN/NOTIFY (ms), ${r.devices} devs`, credbroker: fmt(r.p99, 1), baseline: fmt(json.revocation ? (json.revocation as { p99: number }).p99 : NaN, 1), ratio: '', target: '≤ 1000 (250)', verdict: verdict(r.p99 <= 1000) });
      rows.push({ bench: '10 registry', metric: `  p50 (ms)`, credbroker: fmt(r.p50, 1), baseline: fmt(json.revocation ? (json.revocation as { p50: number }).p50 : NaN, 1), ratio: '', target: 'info', verdict: 'info' });
      const k = b.connect;
      rows.push({ bench: '10 registry', metric: `connects/s (${k.n}, ${k.inflight} in flight), broker on PostgreSQL vs on SQLite`, credbroker: fmt(median(k.postgres)), baseline: fmt(median(k.sqlite)), ratio: ratio(k.ratio), target: 'within noise (≥ 0.90×)', verdict: verdict(k.ratio >= 0.9) });
    });
  } finally {
    fx.close();
  }

  json.totalSeconds = (now() - started) / 1000;
  process.stdout.write(`\ncredbroker benchmark — Node ${process.version}, medians of ${runs} runs (throughput: ${throughputRuns}); baseline = plain aedes (no auth) unless stated; ratio = credbroker / baseline\n`);
  process.stdout.write(json.aedesPatched ? 'aedes: patched at run time (broker/aedes-patches/)\n\n' : 'aedes: NOT patched (not the version broker/aedes-patches/ was written for): every broker pays ≈ 100 µs more per CONNECT\n\n');
  process.stdout.write(table(rows) + '\n');
  if (!mosquitto) process.stdout.write('\nMosquitto column skipped (not installed).\n');
  process.stdout.write('\nNotes: a negative revocation latency means the broker closed the session before the revoking process had exited\n' +
    '(it commits, then spends time shutting down). ListenOverflows is a host-wide kernel counter: other processes on the host count too.\n');
  process.stdout.write(`\ntotal ${(json.totalSeconds as number).toFixed(0)} s\n\nJSON:\n${JSON.stringify(json)}\n`);
  if (failed.length) {
    process.stderr.write(`bench: ${failed.length} section(s) failed: ${failed.join(', ')}\n`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
