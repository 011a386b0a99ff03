// Slowloris (SPEC "Bad input and faults": a CONNECT that never comes): sockets
// that never send CONNECT (or only half of one) are closed at the CONNECT timeout,
// while a valid device connects at normal speed during the attack.
import t from 'tap';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connectDevice, startTestBroker } from './helpers/broker.js';
import { connectPacket, SOAK, sleep } from './helpers/hostile-util.js';

const SILENT = SOAK ? 5000 : 1000;
const PARTIAL = SOAK ? 1000 : 200;
const TIMEOUT_MS = 2000;
// Every attack socket comes from 127.0.0.1: lift the unauthenticated-socket caps, which would otherwise
// reset most of them at once (hostile-idle-sockets.test.ts tests those caps).
const CAPS = { maxUnauthenticated: 100_000, maxUnauthenticatedPerAddress: 100_000 };

/** This process's open-files limits (soft, hard), from /proc/self/limits; Infinity for "unlimited". */
function fdLimits(): { soft: number; hard: number } {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files')) ?? '';
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  return { soft: soft ?? NaN, hard: hard ?? NaN };
}

/**
 * Both ends of every socket live in this process (broker and attacker): raise its
 * soft open-files limit to what the attack needs (within the hard limit, as any
 * user may). Returns why it cannot, or null.
 */
function raiseFdLimit(need: number): string | null {
  const before = fdLimits();
  if (before.soft >= need) return null;
  if (before.hard < need) return `the hard open-files limit ${before.hard} is below the ${need} this attack needs (raise it: ulimit -Hn ${need} as root, or LimitNOFILE)`;
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${need}:`], { encoding: 'utf8' });
  const after = fdLimits();
  return after.soft >= need ? null : `could not raise the soft open-files limit from ${after.soft} to ${need} with prlimit (util-linux): ${r.error?.message ?? r.stderr.trim()}`;
}

t.test(`${SILENT} silent + ${PARTIAL} half-CONNECT sockets are closed at the CONNECT timeout`, async (t) => {
  const need = 2 * (SILENT + PARTIAL) + 200;
  const cannot = raiseFdLimit(need);
  t.comment(`open files limit: ${JSON.stringify(fdLimits())}, needed ${need}`);
  if (cannot) {
    t.fail(cannot);
    return;
  }
  const tb = await startTestBroker({ connectTimeoutMs: TIMEOUT_MS, ...CAPS });
  t.teardown(() => tb.close());
  const port = tb.broker.ports.mqtt!;
  const [good] = await tb.provision(['good-1']);
  const half = connectPacket({ clientId: good!.deviceId, username: good!.deviceId, password: good!.accessToken });
  const partialBytes = half.subarray(0, Math.floor(half.length / 2));

  const timeConnect = async () => {
    const t0 = performance.now();
    const c = await connectDevice(tb.url, good!);
    const ms = performance.now() - t0;
    c.client?.end(true);
    return { code: c.code, ms };
  };
  const baseline = (await timeConnect()).ms;

  interface Held { openedAt: number; closedAt: number | null; error: string | null }
  const held: Held[] = [];
  const sockets: net.Socket[] = [];
  const open = (partial: boolean) => new Promise<void>((resolve) => {
    const h: Held = { openedAt: 0, closedAt: null, error: null };
    held.push(h);
    const s = net.connect({ port, host: '127.0.0.1' });
    sockets.push(s);
    s.on('connect', () => { h.openedAt = performance.now(); if (partial) s.write(partialBytes); resolve(); });
    s.on('error', (e) => { h.error = e.message; resolve(); });
    s.on('close', () => { h.closedAt = performance.now(); resolve(); });
    s.resume();
  });
  const t0 = performance.now();
  for (let i = 0; i < SILENT + PARTIAL; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, SILENT + PARTIAL - i) }, (_, j) => open(i + j >= SILENT)));
  }
  const openedIn = performance.now() - t0;
  t.comment(`${held.length} sockets opened in ${openedIn.toFixed(0)} ms`);
  t.equal(held.filter((h) => h.error).length, 0, 'every attack socket connected');

  // The valid device connects while all of them are held open.
  const during: { code: number; ms: number }[] = [];
  for (let i = 0; i < 5; i++) {
    during.push(await timeConnect());
    await sleep(100);
  }
  t.ok(during.every((d) => d.code === 0), 'the valid device connects during the attack');
  const worst = Math.max(...during.map((d) => d.ms));
  t.comment(`valid connect: baseline ${baseline.toFixed(1)} ms, during attack max ${worst.toFixed(1)} ms (${during.map((d) => d.ms.toFixed(1)).join(', ')})`);
  // Generous bound: the suite shares 2 cores with other test files; the figures are reported above.
  t.ok(worst < 2000, `connect time stays normal under the attack (${worst.toFixed(1)} ms < 2000 ms)`);

  // Every attack socket is closed by the broker, at the timeout (not before, not much after).
  const deadline = performance.now() + TIMEOUT_MS * 3 + 5000;
  while (held.some((h) => h.closedAt === null) && performance.now() < deadline) await sleep(100);
  const open_ = held.filter((h) => h.closedAt === null).length;
  t.equal(open_, 0, 'every silent or half-CONNECT socket was closed by the broker');
  const lifetimes = held.filter((h) => h.closedAt !== null).map((h) => h.closedAt! - h.openedAt);
  const min = Math.min(...lifetimes);
  const max = Math.max(...lifetimes);
  t.comment(`socket lifetimes: min ${min.toFixed(0)} ms, max ${max.toFixed(0)} ms (timeout ${TIMEOUT_MS} ms)`);
  t.ok(min >= TIMEOUT_MS - 200, `none closed before the timeout (min ${min.toFixed(0)} ms)`);
  t.ok(max <= TIMEOUT_MS + 5000, `all closed within 5 s after the timeout (max ${max.toFixed(0)} ms; loaded CI tolerance)`);
  t.equal(tb.broker.context.sessions.size, 0, 'no session was created by the attack');
  for (const s of sockets) s.destroy();

  const after = await timeConnect();
  t.equal(after.code, 0, 'the broker still serves after the attack');
});
