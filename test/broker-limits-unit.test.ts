// Unit tests of the flood limits without a broker: the unauthenticated-socket
// gate, the verification budget, the limit log and the per-address key.
import t from 'tap';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { addressKey } from '../broker/address.js';
import { createLogger } from '../broker/index.js';
import { LimitLog } from '../broker/limit-log.js';
import { UnauthenticatedSockets } from '../broker/socket-limits.js';
import { VerifyBudget } from '../broker/verify-budget.js';

/** Enough of a socket for the gate: endpoints, `close`, and a reset that closes it. */
class FakeSocket extends EventEmitter {
  reset = false;
  static port = 10_000;
  readonly remotePort = FakeSocket.port++;
  readonly localAddress = '127.0.0.1';
  readonly localPort = 1883;
  constructor(readonly remoteAddress: string) { super(); }
  resetAndDestroy() { this.reset = true; this.emit('close'); return this; }
}
const sock = (address: string) => new FakeSocket(address) as unknown as Socket & FakeSocket;

t.test('addressKey: IPv4 as is, IPv6 by /64', async (t) => {
  t.equal(addressKey('192.0.2.7'), '192.0.2.7');
  t.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7', 'IPv4-mapped');
  t.equal(addressKey('2001:db8:1:2:3:4:5:6'), addressKey('2001:db8:1:2:ffff::1'), 'same /64, same key');
  t.not(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'), 'another /64');
  t.equal(addressKey('2001:DB8::1'), '2001:db8:0:0::/64', 'compressed, upper case');
  t.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'zone index dropped');
});

t.test('UnauthenticatedSockets: per address, and the oldest gives way at the total', async (t) => {
  const hits: string[] = [];
  const gate = new UnauthenticatedSockets(4, 2, (limit, address) => hits.push(`${limit} ${address}`));
  const a1 = sock('10.0.0.1'), a2 = sock('10.0.0.1'), a3 = sock('10.0.0.1');
  t.ok(gate.admit(a1) && gate.admit(a2), 'two from one address');
  t.notOk(gate.admit(a3), 'a third from it is refused');
  t.same(hits, ['per_address 10.0.0.1']);
  const b1 = sock('10.0.0.2'), b2 = sock('10.0.0.3'), c = sock('10.0.0.4');
  t.ok(gate.admit(b1) && gate.admit(b2), 'others fill the total');
  t.equal(gate.size, 4);
  t.ok(gate.admit(c), 'at the total, a newcomer is admitted...');
  t.ok(a1.reset, '...and the oldest pending socket is reset');
  t.equal(gate.size, 4, 'still at the cap');
  t.same(hits.at(-1), 'total 10.0.0.1');
  t.ok(gate.admit(sock('10.0.0.1')), 'the evicted socket freed its address slot');

  gate.authenticated(b1);
  t.equal(gate.size, 3, 'an authenticated connection no longer counts');
  b1.emit('close');
  t.equal(gate.size, 3, 'and its close is not counted twice');
  b2.emit('close');
  t.equal(gate.size, 2, 'a pending socket that closes is forgotten');
  gate.authenticated({ remoteAddress: '10.9.9.9', remotePort: 1, localAddress: '127.0.0.1', localPort: 1883 });
  t.equal(gate.size, 2, 'an unknown connection changes nothing');
  t.notOk(gate.admit(sock(undefined as unknown as string)), 'a socket already gone (no address) is refused');
  const v6a = sock('2001:db8:1:2::1'), v6b = sock('2001:db8:1:2::99'), v6c = sock('2001:db8:1:2:a:b:c:d');
  const g6 = new UnauthenticatedSockets(100, 2, () => {});
  t.ok(g6.admit(v6a) && g6.admit(v6b), 'two from one /64');
  t.notOk(g6.admit(v6c), 'a third address of the same /64 is refused');
});

t.test('UnauthenticatedSockets: found by the socket itself, or by four-tuple for a TLS listener', async (t) => {
  const gate = new UnauthenticatedSockets(100, 100, () => {});
  const tcp = sock('10.0.0.1');
  t.ok(gate.admit(tcp));
  gate.authenticated({ remoteAddress: tcp.remoteAddress, remotePort: tcp.remotePort, localAddress: tcp.localAddress, localPort: tcp.localPort });
  t.equal(gate.size, 1, 'a TCP socket is not found by another object with its endpoints');
  gate.authenticated(tcp);
  t.equal(gate.size, 0, 'it is found as itself (what the MQTT client holds)');
  const raw = sock('10.0.0.2');
  t.ok(gate.admit(raw, true), 'accepted by a TLS listener');
  // The client holds the TLS socket over `raw`: another object, the same endpoints.
  gate.authenticated({ remoteAddress: raw.remoteAddress, remotePort: raw.remotePort, localAddress: raw.localAddress, localPort: raw.localPort });
  t.equal(gate.size, 0, 'found by its four-tuple');
  raw.emit('close');
  t.equal(gate.size, 0, 'its close is not counted twice');
  const other = sock('10.0.0.3');
  t.ok(gate.admit(other, true));
  other.emit('close');
  t.equal(gate.size, 0, 'a TLS socket that closes before authenticating is forgotten');
  gate.authenticated({ remoteAddress: other.remoteAddress, remotePort: other.remotePort, localAddress: other.localAddress, localPort: other.localPort });
  t.equal(gate.size, 0);
});

t.test('VerifyBudget: clean addresses pass, suspect ones share the bucket', async (t) => {
  const refused: string[] = [];
  const budget = new VerifyBudget(1, 2, (a) => refused.push(a));
  t.teardown(() => budget.close());
  const t0 = Date.now(); // the bucket starts full at construction time
  t.ok(budget.isEmpty(), 'nothing suspect at first');
  t.ok(budget.allows('10.0.0.1', t0), 'a clean address is allowed');
  budget.failed('10.0.0.1', t0);
  budget.failed('10.0.0.2', t0);
  t.equal(budget.suspectCount, 2);
  t.ok(budget.allows('10.0.0.1', t0) && budget.allows('10.0.0.2', t0), 'the burst (2) serves suspects');
  t.notOk(budget.allows('10.0.0.1', t0), 'then they are refused');
  t.same(refused, ['10.0.0.1']);
  t.ok(budget.allows('10.0.0.3', t0), 'a clean address is never held');
  t.ok(budget.allows('10.0.0.2', t0 + 1000), 'refilled after 1 s at 1/s');
  t.notOk(budget.allows('10.0.0.2', t0 + 1000), 'one token only');
  t.ok(budget.allows('10.0.0.2', t0 + 1000 + 60_001), 'a minute after its last failure or refusal, an address is clean again');
  t.ok(budget.allows('10.0.0.1', t0 + 60_001), 'also after a quiet minute');
  budget.failed('2001:db8:1:2::1', t0);
  t.notOk(budget.isEmpty());
  t.equal(budget.suspectCount, 1, '10.0.0.1 and 10.0.0.2 were forgotten when seen clean; the /64 is suspect');
});

t.test('VerifyBudget: at most 100,000 suspects, the quietest forgotten first', async (t) => {
  const budget = new VerifyBudget(0, 0, () => {});
  t.teardown(() => budget.close());
  for (let i = 0; i < 100_050; i++) budget.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1000 + i);
  t.equal(budget.suspectCount, 100_000, 'bounded');
  t.ok(budget.allows('10.0.0.0', 2000), 'the first (quietest) was forgotten: clean again');
  t.notOk(budget.allows('10.1.134.159', 2000), 'a recent one is still suspect (budget 0)');
});

t.test('LimitLog: one line per limit and 10 s, with the count and a sample of addresses', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(c, _e, cb) { lines.push(JSON.parse(String(c)) as Record<string, unknown>); cb(); } });
  const log = new LimitLog(createLogger('info', sink));
  const t0 = 5_000_000;
  for (let i = 0; i < 1000; i++) log.hit('verify_budget', `10.0.0.${i % 50}`, t0 + i);
  log.hit('unauthenticated_total', '10.9.9.9', t0 + 5);
  log.hit('verify_budget', '10.0.0.99', t0 + 10_001);
  await new Promise((r) => setImmediate(r));
  const budget = lines.filter((l) => l.limit === 'verify_budget');
  t.equal(budget.length, 2, 'two lines for 1,001 hits over 10 s');
  t.match(budget[0], { event: 'limit.hit', count: 1 }, 'the first hit is logged at once');
  t.match(budget[1], { count: 1000 }, 'the next line carries the count since');
  t.ok((budget[1]!.addresses as string[]).length <= 5, 'at most 5 addresses');
  t.equal(lines.filter((l) => l.limit === 'unauthenticated_total').length, 1, 'each limit has its own interval');
});
