// GET /sessions pages cost the page (issue 19 #10): the device ids are kept in
// order as sessions open and close (broker/sorted-keys.ts), not sorted per
// request. Checked against a plain sorted array, and on a real broker with
// devices connecting and leaving between pages.
import t from 'tap';
import type { MqttClient } from 'mqtt';
import type { SessionPage } from '../broker/session-list.js';
import { SortedKeys } from '../broker/sorted-keys.js';
import { connectDevice, startTestBroker } from './helpers/broker.js';

t.test('SortedKeys: the same keys and order as a sorted array, through many adds and deletes', async (t) => {
  // mulberry32 from a fixed seed: the same run every time.
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return (((x ^ (x >>> 14)) >>> 0) % n);
  };
  const keys = new SortedKeys();
  const ref = new Set<string>();
  const key = () => `dev-${rand(6000).toString(36)}${rand(3) === 0 ? '-x' : ''}`;
  let mismatches = 0;
  for (let i = 0; i < 30_000; i++) {
    const k = key();
    if (rand(3) === 0) { if (keys.delete(k) !== ref.delete(k)) mismatches++; }
    else if (keys.add(k) !== (ref.has(k) ? false : (ref.add(k), true))) mismatches++;
  }
  t.equal(mismatches, 0, 'add and delete say whether the key was there');
  t.equal(keys.size, ref.size);
  t.ok(ref.size > 2000, `enough keys to span many chunks (${ref.size})`);
  const sorted = [...ref].sort();
  t.same([...keys.after('')], sorted, 'all of them, in order');
  for (const cursor of ['', sorted[0]!, sorted[777]!, `${sorted[1500]!}0`, sorted[sorted.length - 1]!, 'zzz', 'dev-']) {
    t.same([...keys.after(cursor)], sorted.filter((k) => k > cursor), `after ${JSON.stringify(cursor)}`);
  }
  for (const k of sorted) keys.delete(k);
  t.equal(keys.size, 0);
  t.same([...keys.after('')], [], 'empty again');
});

t.test('paging while devices come and go: none twice, none that stayed connected skipped', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const base = `http://127.0.0.1:${tb.broker.ports.http}`;
  const ids = Array.from({ length: 60 }, (_, i) => `pg-${String(i).padStart(2, '0')}`);
  const creds = new Map((await tb.provision(ids)).map((c) => [c.deviceId, c]));
  const clients = new Map<string, MqttClient>();
  t.teardown(() => { for (const c of clients.values()) c.end(true); });
  const page = async (q: string) => {
    const res = await fetch(`${base}/sessions?${q}`, { signal: AbortSignal.timeout(5000) });
    t.equal(res.status, 200);
    return (await res.json()) as SessionPage;
  };
  /** Until the broker lists `id` (or no longer does): a connect or close is registered just after CONNACK / the socket's end. */
  const listed = async (id: string, want: boolean) => {
    for (const end = Date.now() + 10_000; ;) {
      if ((await page(`device=${id}`)).sessions.length === (want ? 1 : 0)) return;
      if (Date.now() > end) throw new Error(`${id} still ${want ? 'not ' : ''}listed after 10 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const join = async (id: string) => {
    const r = await connectDevice(tb.url, creds.get(id)!);
    if (r.code !== 0 || !r.client) throw new Error(`${id}: CONNACK ${r.code}`);
    clients.set(id, r.client);
    await listed(id, true);
  };
  const leave = async (id: string) => {
    clients.get(id)!.end(true);
    clients.delete(id);
    await listed(id, false);
  };
  // Every even id now; the odd ones join while the pages are read.
  for (const id of ids.filter((_, i) => i % 2 === 0)) await join(id);
  const left = new Set<string>();
  const leftAhead = new Set<string>();
  const joinedAhead = new Set<string>();
  const seen: string[] = [];
  let after: string | null = '';
  let step = 0;
  while (after !== null) {
    const p: SessionPage = await page(`limit=7${after ? `&after=${after}` : ''}`);
    seen.push(...p.sessions.map((s) => s.deviceId));
    after = p.next;
    if (after === null) break;
    // Between pages: one behind the cursor leaves, one ahead leaves, one joins behind, one joins ahead, and one just after the cursor.
    const behind = seen[step % seen.length]!;
    const ahead = [...clients.keys()].sort().find((id) => id > after! && !left.has(id) && id !== seen[seen.length - 1]);
    for (const id of [behind, ahead]) if (id && clients.has(id)) { await leave(id); left.add(id); }
    if (ahead) leftAhead.add(ahead);
    const odd = ids.filter((id, i) => i % 2 === 1 && !clients.has(id) && !left.has(id));
    const joinBehind = odd.find((id) => id < after!);
    const joinAhead = odd.find((id) => id > after!);
    for (const id of [joinBehind, joinAhead]) if (id) await join(id);
    if (joinAhead) joinedAhead.add(joinAhead);
    step++;
  }
  t.ok(step >= 3, `several pages (${step + 1})`);
  t.equal(new Set(seen).size, seen.length, 'no device listed twice');
  t.same(seen, [...seen].sort(), 'in device-id order');
  const stayed = [...clients.keys()].filter((id) => ids.indexOf(id) % 2 === 0);
  t.same(stayed.filter((id) => !seen.includes(id)), [], 'every device connected from start to end was listed');
  t.ok(leftAhead.size >= 2 && joinedAhead.size >= 2, 'devices left and joined ahead of the cursor');
  t.same(seen.filter((id) => leftAhead.has(id)), [], 'one that left before its page was read is not listed');
  t.same([...joinedAhead].filter((id) => !left.has(id) && !seen.includes(id)), [], 'one that joined ahead of the cursor is listed');
  // The whole listing now, in two ways: one page, and pages of 1.
  const all = (await page('limit=1000')).sessions.map((s) => s.deviceId);
  t.same(all, [...clients.keys()].sort(), 'one page: exactly the live sessions');
  const ones: string[] = [];
  for (let a: string | null = ''; a !== null;) {
    const p: SessionPage = await page(`limit=1${a ? `&after=${a}` : ''}`);
    ones.push(...p.sessions.map((s) => s.deviceId));
    a = p.next;
  }
  t.same(ones, all, 'pages of one: the same');
});
