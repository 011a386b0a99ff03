// broker/outbound-queue.ts on its own: the per-client accounting against a
// socket buffer whose fill level the test sets (what `writableLength` reads on
// a real socket; the hostile-slow-subscriber test runs it against real ones).
import t from 'tap';
import type { AedesPublishPacket, Client } from 'aedes';
import type { QueueLimits } from '../broker/limits.js';
import { OutboundQueues } from '../broker/outbound-queue.js';

const limits: QueueLimits = { maxQueuedMessages: 10, maxQueuedBytes: 10_000, queueStallMs: 1000, hardQueuedBytes: 20_000 };

function setup() {
  let clock = 0;
  const conn = { writableLength: 0 };
  const client = { conn } as unknown as Client;
  const q = new OutboundQueues(limits, () => clock);
  const msg = (qos: 0 | 1, bytes = 96) => ({ cmd: 'publish', topic: 'devices/a/t', payload: Buffer.alloc(bytes - 15 - (qos ? 2 : 0)), qos, retain: false, dup: false }) as unknown as AedesPublishPacket;
  return { q, client, conn, msg, tick: (ms: number) => { clock += ms; } };
}

t.test('a client whose socket buffer is empty is never limited', async (t) => {
  const { q, client, msg } = setup();
  for (let i = 0; i < 1000; i++) t.equal(q.admit(client, msg(0)), 'forward');
});

t.test('QoS 0 past the message bound is dropped; QoS 1 still goes; a drained buffer admits again', async (t) => {
  const { q, client, conn, msg } = setup();
  conn.writableLength = 1; // behind
  for (let i = 0; i < 10; i++) {
    t.equal(q.admit(client, msg(0)), 'forward', `message ${i + 1} queued`);
    conn.writableLength += 96;
  }
  t.equal(q.admit(client, msg(0)), 'drop_messages', 'the 11th QoS 0 message is dropped');
  t.equal(q.admit(client, msg(1)), 'forward', 'QoS 1 is not dropped');
  conn.writableLength += 96;
  // The socket takes the oldest five messages (and the one byte ahead of them).
  conn.writableLength -= 1 + 5 * 96;
  t.equal(q.admit(client, msg(0)), 'forward', 'room again once messages have left the buffer');
  conn.writableLength = 0;
  for (let i = 0; i < 20; i++) t.equal(q.admit(client, msg(0)), 'forward');
});

t.test('QoS 0 past the byte bound is dropped; a client over it for queueStallMs is disconnected', async (t) => {
  const { q, client, conn, msg, tick } = setup();
  conn.writableLength = 10_000;
  t.equal(q.admit(client, msg(0)), 'drop_bytes', 'at the byte bound: dropped');
  conn.writableLength = 10_500;
  t.equal(q.admit(client, msg(1)), 'forward', 'over it: QoS 1 still goes, the stall clock starts');
  tick(900);
  t.equal(q.admit(client, msg(0)), 'drop_bytes', 'still within queueStallMs');
  conn.writableLength = 5_000;
  t.equal(q.admit(client, msg(0)), 'forward', 'back under the bound: the clock stops');
  conn.writableLength = 10_500;
  tick(500);
  t.equal(q.admit(client, msg(0)), 'drop_bytes', 'over again: a fresh clock');
  tick(1001);
  t.equal(q.admit(client, msg(0)), 'disconnect', 'over it for longer than queueStallMs: disconnected');
});

t.test('past the hard ceiling the client is disconnected at once', async (t) => {
  const { q, client, conn, msg } = setup();
  conn.writableLength = 20_001;
  t.equal(q.admit(client, msg(1)), 'disconnect');
});
