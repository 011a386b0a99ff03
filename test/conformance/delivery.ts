// PUBLISH and its acknowledgements (§3.3–3.7), SUBSCRIBE (§3.8–3.9),
// UNSUBSCRIBE (§3.10–3.11), retained messages (§3.3.1.3, §4.7) and
// redelivery on a resumed session (§4.4).
import type { Packet } from 'mqtt-packet';
import { frame, type CaseContext, type ConformanceCase, type Credential, type RawConnection } from '../helpers/raw-mqtt.js';

type Pub = Extract<Packet, { cmd: 'publish' }>;
const pub = (topic: string, payload: string, qos: 0 | 1 | 2, retain: boolean, messageId?: number): Pub =>
  ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false, ...(qos > 0 && { messageId: messageId ?? 1 }) }) as Pub;

async function subscribe(c: RawConnection, topic: string, qos: 0 | 1 | 2, messageId = 7): Promise<number> {
  c.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] });
  // MQTT 3.1.1 does not order a new subscription's retained messages after its SUBACK, and on a
  // Redis bus they can come first: they are kept, in order, for the case to read after it.
  const early: Packet[] = [];
  let next = await c.next('SUBACK');
  while (next.cmd === 'publish') { early.push(next); next = await c.next('SUBACK'); }
  if (next.cmd !== 'suback') throw new Error(`expected SUBACK, got ${next.cmd.toUpperCase()}`);
  c.putBack(early);
  const ack = next;
  if (ack.messageId !== messageId) throw new Error(`SUBACK for ${ack.messageId}, not ${messageId}`);
  return ack.granted[0] as number;
}

/** A retained message on `topic`, stored once its QoS 1 PUBACK is back. */
async function retain({ session }: CaseContext, cred: Credential, topic: string, payload: string, qos: 0 | 1 = 1): Promise<void> {
  const p = await session(cred);
  p.send(pub(topic, payload, qos, true, 11));
  if (qos === 1) await p.expect('puback');
  else await p.drainUntilPing();
  p.end();
}

/** The retained replay for `filter` as the publishes got before a sentinel PINGRESP (after the SUBACK). */
async function replay(c: RawConnection, filter: string, qos: 0 | 1 | 2 = 1): Promise<Pub[]> {
  await subscribe(c, filter, qos);
  const got: Pub[] = [];
  // Wait for the first copy (before or after the SUBACK), then prove there is no other with a sentinel.
  got.push(await c.expect('publish'));
  for (const p of await c.drainUntilPing()) if (p.cmd === 'publish') got.push(p);
  return got;
}

/** The topics of the publishes `c` gets up to and including one on `last` (each QoS 1 copy acknowledged). */
async function topicsUntil(c: RawConnection, last: string): Promise<string[]> {
  const got: string[] = [];
  while (got.at(-1) !== last) {
    const p = await c.next(`the message on ${last}`);
    if (p.cmd !== 'publish') continue;
    got.push(p.topic);
    if (p.qos > 0) c.send({ cmd: 'puback', messageId: p.messageId! });
  }
  return got;
}

/**
 * `+` matching an empty level (`a/+` and `a/`, `a/+/c` and `a//c`) in live
 * delivery and in the queue of an offline persistent session. Each message on
 * the empty level is followed by a sentinel on a non-empty one that the same
 * filter matches: the sentinel alone means the first was missed.
 */
const EMPTY_LEVELS = [
  { filter: 'topic/+', topic: 'topic/', sentinel: 'topic/s' },
  { filter: 'foo/+/baz', topic: 'foo//baz', sentinel: 'foo/s/baz' },
] as const;
const emptyLevelCases = EMPTY_LEVELS.flatMap(({ filter, topic, sentinel }): ConformanceCase[] => [
  {
    ids: ['MQTT-4.7.1-3', '§4.7.1.3'], title: `live delivery: \`+\` matches an empty level (${filter} and ${topic})`,
    async run({ session, device, t }) {
      const [owner, sender] = [await device(), await device()];
      const at = (s: string) => `conf/${owner.deviceId}/${s}`;
      const c = await session(owner);
      await subscribe(c, at(filter), 1);
      const s = await session(sender);
      s.send(pub(at(topic), 'empty', 1, false, 2));
      s.send(pub(at(sentinel), 'sentinel', 1, false, 3));
      t.same(await topicsUntil(c, at(sentinel)), [at(topic), at(sentinel)]);
    },
  },
  {
    ids: ['MQTT-4.7.1-3', 'MQTT-3.1.2-5', '§4.7.1.3'], title: `offline queue: \`+\` matches an empty level (${filter} and ${topic}), QoS 1, persistent session`,
    async run({ session, device, t }) {
      const [owner, sender] = [await device(), await device()];
      const at = (s: string) => `conf/${owner.deviceId}/${s}`;
      const first = await session(owner, { clean: false });
      await subscribe(first, at(filter), 1);
      first.send({ cmd: 'disconnect' });
      await first.expectClose();
      const s = await session(sender);
      s.send(pub(at(topic), 'empty', 1, false, 2));
      await s.expect('puback');
      s.send(pub(at(sentinel), 'sentinel', 1, false, 3));
      await s.expect('puback');
      const again = await session(owner, { clean: false });
      // Both, in any order and any number of copies: on a bus a resumed queue is sometimes sent twice or out of
      // order (not this case's subject); a message that never comes fails at the deadline.
      const got = new Set<string>();
      while (!got.has(at(topic)) || !got.has(at(sentinel))) for (const x of await topicsUntil(again, at(got.has(at(sentinel)) ? topic : sentinel))) got.add(x);
      t.same([...got].sort(), [at(topic), at(sentinel)].sort());
    },
  },
]).concat({
  ids: ['MQTT-3.10.4-1', 'MQTT-4.7.1-3'], title: 'offline queue: after UNSUBSCRIBE of `a/+` and a clean session\'s wipe of `b/+`, nothing on `a/` or `b/` is queued',
  async run({ session, device, t }) {
    const [owner, sender] = [await device(), await device()];
    const at = (s: string) => `conf/${owner.deviceId}/${s}`;
    const wiped = await session(owner, { clean: false });
    await subscribe(wiped, at('b/+'), 1);
    wiped.send({ cmd: 'disconnect' });
    await wiped.expectClose();
    (await session(owner, { clean: true })).send({ cmd: 'disconnect' });
    const first = await session(owner, { clean: false });
    t.equal(first.sessionPresent, false, 'the clean session wiped the stored one');
    await subscribe(first, at('a/+'), 1);
    await subscribe(first, at('s'), 1, 8);
    first.send({ cmd: 'unsubscribe', messageId: 9, unsubscriptions: [at('a/+')] });
    await first.expect('unsuback');
    first.send({ cmd: 'disconnect' });
    await first.expectClose();
    const s = await session(sender);
    for (const [i, topic] of [at('a/'), at('b/'), at('s')].entries()) { s.send(pub(topic, 'x', 1, false, i + 1)); await s.expect('puback'); }
    t.same([...new Set(await topicsUntil(await session(owner, { clean: false }), at('s')))], [at('s')]);
  },
});

const ackCases = (['puback', 'pubrec', 'pubrel', 'pubcomp'] as const).flatMap((cmd): ConformanceCase[] => {
  const first = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 }[cmd];
  return [
    {
      ids: ['MQTT-2.3.1-1'], title: `${cmd.toUpperCase()} with packet id 0: close`,
      async run({ session, device }) {
        const c = await session(await device());
        c.send(frame(first, Buffer.from([0, 0])));
        await c.expectClose();
      },
    },
    {
      ids: ['MQTT-3.4.2', 'MQTT-4.8.0-1'], title: `${cmd.toUpperCase()} of remaining length 3: close`,
      async run({ session, device }) {
        const c = await session(await device());
        c.send(frame(first, Buffer.from([0, 5, 0])));
        await c.expectClose();
      },
    },
  ];
});

export const DELIVERY_CASES: readonly ConformanceCase[] = [
  ...([1, 2] as const).map((qos): ConformanceCase => ({
    ids: ['MQTT-2.3.1-1'], title: `PUBLISH QoS ${qos} with packet id 0: close`,
    async run({ session, device }) {
      const cred = await device();
      const c = await session(cred);
      c.send(pub(`conf/${cred.deviceId}/x`, 'x', qos, false, 0));
      await c.expectClose();
    },
  })),
  {
    ids: ['MQTT-3.3.1-4'], title: 'PUBLISH with both QoS bits set: close',
    async run({ session, device }) {
      const cred = await device();
      const c = await session(cred);
      const topic = Buffer.from(`conf/${cred.deviceId}/x`);
      c.send(frame(0x36, Buffer.concat([Buffer.from([0, topic.length]), topic, Buffer.from([0, 1, 0x78])])));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.3.2-2'], title: 'PUBLISH to a topic name with a wildcard: close',
    credbroker: 'MQTT says the topic name must not hold wildcards; credbroker closes, as for any malformed packet',
    async run({ session, device }) {
      const cred = await device();
      const c = await session(cred);
      c.send(pub(`conf/${cred.deviceId}/+`, 'x', 0, false));
      await c.expectClose();
    },
  },
  ...([1, 2] as const).map((qos): ConformanceCase => ({
    ids: [qos === 1 ? 'MQTT-4.3.2-2' : 'MQTT-4.3.3-2', 'MQTT-3.4.0-1'], title: `PUBLISH QoS ${qos}: ${qos === 1 ? 'PUBACK' : 'PUBREC, then PUBCOMP for the PUBREL'} with its packet id`,
    async run({ session, device, t }) {
      const cred = await device();
      const c = await session(cred);
      c.send(pub(`conf/${cred.deviceId}/x`, 'x', qos, false, 4242));
      if (qos === 1) { t.equal((await c.expect('puback')).messageId, 4242); return; }
      t.equal((await c.expect('pubrec')).messageId, 4242);
      c.send({ cmd: 'pubrel', messageId: 4242 });
      t.equal((await c.expect('pubcomp')).messageId, 4242);
    },
  })),
  {
    ids: ['MQTT-3.3.5-2'], title: 'PUBLISH outside the ACL: the connection is closed (one of the two answers MQTT allows)',
    credbroker: 'MQTT allows a positive acknowledgement or a close; credbroker closes by default (deniedPublish: disconnect), so that a misbehaving device is noticed; deniedPublish: drop acknowledges and drops',
    async run({ session, device }) {
      const cred = await device();
      const c = await session(cred);
      c.send(pub(`elsewhere/${cred.deviceId}`, 'x', 1, false, 3));
      await c.expectClose();
    },
  },
  ...ackCases,
  {
    ids: ['MQTT-3.8.4-1', 'MQTT-3.8.4-2', 'MQTT-3.9.3-1'], title: 'SUBSCRIBE: SUBACK with its packet id, a granted QoS per filter',
    async run({ session, device, t }) {
      const cred = await device();
      const c = await session(cred);
      c.send({ cmd: 'subscribe', messageId: 99, subscriptions: [{ topic: `conf/${cred.deviceId}/a`, qos: 0 }, { topic: `conf/${cred.deviceId}/b`, qos: 2 }] });
      const ack = await c.expect('suback');
      t.equal(ack.messageId, 99);
      t.same(ack.granted, [0, 2]);
    },
  },
  {
    ids: ['MQTT-3.9.3-2'], title: 'SUBSCRIBE outside the ACL: SUBACK 0x80',
    credbroker: 'the filter is refused because the token\'s ACL does not cover it',
    async run({ session, device, t }) {
      const c = await session(await device());
      t.equal(await subscribe(c, 'elsewhere/#', 1), 0x80);
    },
  },
  {
    ids: ['MQTT-3.9.3-2', '§4.7'], title: 'SUBSCRIBE to a filter of 201 levels: SUBACK 0x80, the connection stays',
    credbroker: 'a cap on levels keeps the routing tries bounded; the filter is well-formed, so it is refused in the SUBACK',
    async run({ session, device, t }) {
      const cred = await device();
      const c = await session(cred);
      t.equal(await subscribe(c, `conf/${cred.deviceId}/${'l/'.repeat(198)}l`, 0), 0x80);
      c.send({ cmd: 'pingreq' });
      await c.expect('pingresp');
    },
  },
  {
    ids: ['MQTT-3.8.3-3'], title: 'SUBSCRIBE with no topic filter: close',
    async run({ session, device }) {
      const c = await session(await device());
      c.send(frame(0x82, Buffer.from([0, 1])));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.8.1-1'], title: 'SUBSCRIBE with reserved header flags 0000: close',
    async run({ session, device }) {
      const cred = await device();
      const c = await session(cred);
      const topic = Buffer.from(`conf/${cred.deviceId}/x`);
      c.send(frame(0x80, Buffer.concat([Buffer.from([0, 1, 0, topic.length]), topic, Buffer.from([0])])));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-2.3.1-1'], title: 'SUBSCRIBE with packet id 0: close',
    async run({ session, device }) {
      const cred = await device();
      const c = await session(cred);
      c.send({ cmd: 'subscribe', messageId: 0, subscriptions: [{ topic: `conf/${cred.deviceId}/x`, qos: 0 }] });
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.10.3-2'], title: 'UNSUBSCRIBE with no topic filter: close',
    async run({ session, device }) {
      const c = await session(await device());
      c.send(frame(0xa2, Buffer.from([0, 1])));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.10.1-1'], title: 'UNSUBSCRIBE with reserved header flags 0000: close',
    async run({ session, device }) {
      const c = await session(await device());
      c.send(frame(0xa0, Buffer.from([0, 1, 0, 1, 0x78])));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.10.4-1', 'MQTT-3.10.4-4', 'MQTT-3.10.4-5'], title: 'UNSUBSCRIBE: UNSUBACK with its packet id, and no delivery after it',
    async run({ session, device, t }) {
      const cred = await device();
      const topic = `conf/${cred.deviceId}/u`;
      const c = await session(cred);
      await subscribe(c, topic, 0);
      c.send({ cmd: 'unsubscribe', messageId: 31, unsubscriptions: [topic, `conf/${cred.deviceId}/never`] });
      t.equal((await c.expect('unsuback')).messageId, 31);
      c.send(pub(topic, 'x', 0, false));
      t.same(await c.drainUntilPing(), [], 'nothing delivered');
    },
  },
  {
    ids: ['MQTT-3.3.1-6', '§4.7.1.3'], title: 'retained replay: `+` matches an empty last level (a/+ and a/)',
    async run(ctx) {
      const cred = await ctx.device();
      await retain(ctx, cred, `conf/${cred.deviceId}/topic/`, 'empty-last');
      const got = await replay(await ctx.session(cred), `conf/${cred.deviceId}/topic/+`);
      ctx.t.same(got.map((p) => [p.topic, String(p.payload), p.retain]), [[`conf/${cred.deviceId}/topic/`, 'empty-last', true]]);
    },
  },
  {
    ids: ['MQTT-3.3.1-6', '§4.7.1.3'], title: 'retained replay: `+` matches an empty inner level (a/+/c and a//c; a/+/c/#)',
    async run(ctx) {
      const cred = await ctx.device();
      const base = `conf/${cred.deviceId}/foo`;
      await retain(ctx, cred, `${base}//baz`, 'inner');
      const c = await ctx.session(cred);
      ctx.t.same((await replay(c, `${base}/+/baz`)).map((p) => p.topic), [`${base}//baz`]);
      ctx.t.same((await replay(c, `${base}/+/baz/#`)).map((p) => p.topic), [`${base}//baz`]);
    },
  },
  ...emptyLevelCases,
  {
    ids: ['MQTT-3.8.4-6', 'MQTT-3.3.1-6'], title: 'retained QoS 1 message to a `#` subscription granted QoS 0: sent at QoS 0',
    async run(ctx) {
      const cred = await ctx.device();
      await retain(ctx, cred, `conf/${cred.deviceId}/q/r`, 'down');
      const got = await replay(await ctx.session(cred), `conf/${cred.deviceId}/#`, 0);
      ctx.t.same(got.map((p) => [p.topic, p.qos, p.retain]), [[`conf/${cred.deviceId}/q/r`, 0, true]]);
    },
  },
  {
    ids: ['MQTT-3.8.4-6'], title: 'retained QoS 1 message to a `+` subscription granted QoS 1: sent at QoS 1',
    async run(ctx) {
      const cred = await ctx.device();
      await retain(ctx, cred, `conf/${cred.deviceId}/q/r`, 'kept');
      const got = await replay(await ctx.session(cred), `conf/${cred.deviceId}/+/r`, 1);
      ctx.t.same(got.map((p) => [p.qos, p.retain]), [[1, true]]);
    },
  },
  {
    ids: ['MQTT-3.8.4-6'], title: 'live QoS 1 message to a subscription granted QoS 0: sent at QoS 0',
    async run({ session, device, t }) {
      const cred = await device();
      const c = await session(cred);
      await subscribe(c, `conf/${cred.deviceId}/#`, 0);
      c.send(pub(`conf/${cred.deviceId}/l`, 'live', 1, false, 5));
      const got = [await c.next(), await c.next()];
      const p = got.find((x): x is Pub => x.cmd === 'publish')!;
      t.ok(got.some((x) => x.cmd === 'puback'));
      t.same([p.qos, p.retain, String(p.payload)], [0, false, 'live']);
    },
  },
  {
    ids: ['MQTT-3.3.1-2', 'MQTT-3.3.1-9'], title: 'live delivery to an existing subscription: retain 0',
    async run({ session, device, t }) {
      const cred = await device();
      const c = await session(cred);
      await subscribe(c, `conf/${cred.deviceId}/#`, 0);
      c.send(pub(`conf/${cred.deviceId}/l`, 'live', 0, true));
      t.equal((await c.expect('publish')).retain, false);
    },
  },
  {
    ids: ['MQTT-3.3.1-8', 'MQTT-3.3.1-9', 'MQTT-3.3.1-6'], title: 'a retained message published just before a SUBSCRIBE is delivered once, live or retained (50 runs)',
    async run({ session, device, t }) {
      const [a, b] = [await device(), await device()];
      const publisher = await session(a);
      const subscriber = await session(b);
      for (let i = 0; i < 50; i++) {
        const topic = `conf/${b.deviceId}/race/${i}`;
        const qos = (i % 2) as 0 | 1;
        publisher.send(pub(topic, `m${i}`, qos, true, i + 1));
        subscriber.send({ cmd: 'subscribe', messageId: i + 1, subscriptions: [{ topic, qos: 1 }] });
        if (qos === 1) await publisher.expect('puback');
        const got: Pub[] = [];
        for (;;) {
          const p = await subscriber.next(`the copy of m${i}`);
          if (p.cmd === 'publish') { got.push(p); if (p.qos > 0) subscriber.send({ cmd: 'puback', messageId: p.messageId! }); }
          if (got.length > 0) break;
        }
        // Sentinel: a later message on the topic; a second copy of m${i} would come before it or with the pings.
        publisher.send(pub(topic, 'sentinel', 0, false));
        for (;;) {
          const p = await subscriber.next('the sentinel');
          if (p.cmd !== 'publish') continue;
          if (String(p.payload) === 'sentinel') break;
          got.push(p);
          if (p.qos > 0) subscriber.send({ cmd: 'puback', messageId: p.messageId! });
        }
        for (const p of await subscriber.drainUntilPing()) if (p.cmd === 'publish' && String(p.payload) === `m${i}`) got.push(p);
        if (got.length !== 1) t.fail(`m${i} delivered ${got.length} times: ${got.map((p) => `retain=${p.retain}`).join(', ')}`);
      }
    },
  },
  ...([1, 2] as const).map((qos): ConformanceCase => ({
    ids: ['MQTT-3.3.1-1', 'MQTT-4.4.0-1', 'MQTT-2.3.1-4'], title: `QoS ${qos} PUBLISH unacknowledged at a disconnect: sent again on the resumed session with DUP 1 and the same packet id`,
    async run({ session, device, t }) {
      const cred = await device();
      const topic = `conf/${cred.deviceId}/redeliver`;
      const first = await session(cred, { clean: false });
      await subscribe(first, topic, qos);
      first.send(pub(topic, 'again', qos, false, 9));
      let delivered: Pub | null = null;
      while (!delivered) {
        const p = await first.next('the delivery');
        if (p.cmd === 'publish') delivered = p;
        if (p.cmd === 'pubrec') first.send({ cmd: 'pubrel', messageId: p.messageId! });
      }
      t.equal(delivered.dup, false, 'first delivery: DUP 0');
      first.end(); // no acknowledgement
      const again = await session(cred, { clean: false });
      t.equal(again.sessionPresent, true);
      let redelivered: Pub | null = null;
      while (!redelivered) {
        const p = await again.next('the redelivery');
        if (p.cmd === 'publish' && String(p.payload) === 'again') redelivered = p;
      }
      t.same([redelivered.dup, redelivered.messageId, redelivered.qos], [true, delivered.messageId, qos]);
    },
  })),
  {
    ids: ['MQTT-3.3.1-1'], title: 'QoS 1 message queued while the session was offline: sent with DUP 0',
    async run({ session, device, t }) {
      const [owner, sender] = [await device(), await device()];
      const topic = `conf/${owner.deviceId}/queued`;
      const first = await session(owner, { clean: false });
      await subscribe(first, topic, 1);
      first.send({ cmd: 'disconnect' });
      await first.expectClose();
      const s = await session(sender);
      s.send(pub(topic, 'queued', 1, false, 2));
      await s.expect('puback');
      const again = await session(owner, { clean: false });
      const p = await again.expect('publish');
      t.same([String(p.payload), p.dup], ['queued', false]);
    },
  },
  {
    ids: ['MQTT-4.6.0-6'], title: 'a resumed session gets its queue before the live messages on the same topic, each once, in order (20 runs)',
    async run({ session, device, t }) {
      for (let run = 0; run < 20; run++) {
        const [owner, sender] = [await device(), await device()];
        const topic = `conf/${owner.deviceId}/ordered`;
        const first = await session(owner, { clean: false });
        await subscribe(first, topic, 1);
        first.send({ cmd: 'disconnect' });
        await first.expectClose();
        const s = await session(sender);
        for (let i = 0; i < 5; i++) { s.send(pub(topic, `queued-${i}`, 1, false, i + 1)); await s.expect('puback'); }
        const again = await session(owner, { clean: false });
        // published while the queue is being sent: after it on an ordered topic
        for (let i = 0; i < 3; i++) { s.send(pub(topic, `live-${i}`, 1, false, 10 + i)); await s.expect('puback'); }
        s.send(pub(topic, 'sentinel', 1, false, 20));
        await s.expect('puback');
        const got: string[] = [];
        for (;;) {
          const p = await again.next('the sentinel');
          if (p.cmd !== 'publish') continue;
          again.send({ cmd: 'puback', messageId: p.messageId! });
          if (String(p.payload) === 'sentinel') break;
          got.push(`${String(p.payload)}${p.dup ? ' (DUP)' : ''}`);
        }
        const want = ['queued-0', 'queued-1', 'queued-2', 'queued-3', 'queued-4', 'live-0', 'live-1', 'live-2'];
        if (got.join() !== want.join()) t.fail(`run ${run}: ${got.join(', ')}`);
        s.end();
        again.end();
      }
    },
  },
];
