import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import type { Test } from 'tap';
import { closed, connect } from './broker.js';
import { runCli } from './cli.js';
import { collect, startCluster, until, type TestCluster, type Topology } from './cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Asks for a renewal on `client`'s own session and resolves with the answer's kind and body. */
async function renew(client: MqttClient, id: string): Promise<{ kind: string; body: Record<string, unknown> }> {
  await client.subscribeAsync(`$devices/${id}/token/+`, { qos: 1 });
  const requestId = randomBytes(12).toString('base64url');
  const answer = new Promise<{ kind: string; body: Record<string, unknown> }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no renewal answer for ${id} within 15 s`)), 15_000);
    client.on('message', (topic, payload) => {
      const body = JSON.parse(payload.toString()) as Record<string, unknown>;
      if (!topic.startsWith(`$devices/${id}/token/`) || body.requestId !== requestId) return;
      clearTimeout(timer);
      resolve({ kind: topic.slice(topic.lastIndexOf('/') + 1), body });
    });
  });
  await client.publishAsync(`$devices/${id}/token/renew`, JSON.stringify({ requestId }), { qos: 1 });
  return answer;
}

const creds = (d: { deviceId: string; accessToken: string }) => ({ clientId: d.deviceId, username: d.deviceId, password: d.accessToken });

/**
 * The semantics of one broker, held across two brokers on a Redis bus (issue 13):
 * two workers of a node, or two nodes on one registry. Each check puts the two
 * ends on different brokers and says where they were.
 */
export function clusterSemantics(t: Test, topology: Topology): void {
  let c!: TestCluster;
  const open: MqttClient[] = [];
  t.before(async () => { c = await startCluster(t, topology); });
  t.afterEach(() => { for (const x of open.splice(0)) x.end(true); });
  const keep = (x: MqttClient | null) => { if (x) open.push(x); return x!; };

  t.test('delivery between brokers, QoS 0 and 1', async (t) => {
    const [obs] = await c.provision([`${topology}-obs-1`], 'observer');
    const [sen] = await c.provision([`${topology}-sen-1`]);
    const o = await c.connectOn(creds(obs!));
    keep(o.client);
    await o.client!.subscribeAsync('devices/+/telemetry', { qos: 1 });
    const got = collect(o.client!);
    const s = await c.connectAway(o.place, creds(sen!));
    keep(s.client);
    t.not(s.place, o.place, `observer on ${o.place}, sensor on ${s.place}`);
    await s.client!.publishAsync(`devices/${sen!.deviceId}/telemetry`, 'q0', { qos: 0 });
    await s.client!.publishAsync(`devices/${sen!.deviceId}/telemetry`, 'q1', { qos: 1 });
    await until('both messages', () => got.length >= 2);
    t.same(got.sort(), [`devices/${sen!.deviceId}/telemetry q0`, `devices/${sen!.deviceId}/telemetry q1`]);
  });

  t.test('client-id takeover: the newer connection wins', async (t) => {
    const [dev] = await c.provision([`${topology}-dup-1`]);
    const [obs] = await c.provision([`${topology}-obs-dup`], 'observer');
    const first = await c.connectOn(creds(dev!));
    keep(first.client);
    const gone = closed(first.client!);
    const second = await c.connectAway(first.place, creds(dev!));
    keep(second.client);
    t.not(second.place, first.place, `first on ${first.place}, second on ${second.place}`);
    await gone;
    // The sentinel: a command sent from the first connection's broker after the takeover, over the bus the
    // takeover crossed. Once the newer connection has it, a kick sent its way before it would have arrived.
    await second.client!.subscribeAsync(`devices/${dev!.deviceId}/commands/#`, { qos: 1 });
    const got = collect(second.client!);
    const o = await c.connectAway(second.place, creds(obs!));
    keep(o.client);
    t.equal(o.place, first.place, `the sentinel is sent on ${o.place}`);
    await o.client!.publishAsync(`devices/${dev!.deviceId}/commands/ping`, 'sentinel', { qos: 1 });
    await until('the command from the first connection\'s broker (the sentinel)', () => got.length > 0);
    t.ok(second.client!.connected, 'the newer connection stays');
  });

  t.test('the same device to both brokers at once, 20 times: exactly one session survives, no livelock', async (t) => {
    const [dev] = await c.provision([`${topology}-dup-2`]);
    const survivors: number[] = [];
    for (let round = 0; round < 20; round++) {
      // Two nodes: one connection to each. One node: back to back, the primary hands them to its two workers in turn.
      const pair = await Promise.all([connect(c.url(0), creds(dev!)), connect(c.url(1), creds(dev!))]);
      const live = pair.flatMap((r) => (r.client ? [r.client] : []));
      const left = () => live.filter((x) => x.connected).length;
      // The takeover message crosses the bus: on a loaded host it may take a while to close the loser.
      await until('the takeover to settle', () => left() <= 1, 10_000).catch(() => {});
      await sleep(500);
      survivors.push(left());
      for (const x of live) x.end(true);
      await sleep(200);
    }
    t.same(survivors, Array(20).fill(1), 'one connection left in every round');
    const after = await c.connectOn(creds(dev!));
    keep(after.client);
    await sleep(1500);
    t.ok(after.client?.connected, 'afterwards the device connects and stays');
  });

  t.test('a retained message set on one broker is delivered by the other', async (t) => {
    const [sen] = await c.provision([`${topology}-ret-1`]);
    const [obs] = await c.provision([`${topology}-obs-2`], 'observer');
    const s = await c.connectOn(creds(sen!));
    keep(s.client);
    await s.client!.publishAsync(`devices/${sen!.deviceId}/telemetry`, 'kept', { qos: 1, retain: true });
    await sleep(500);
    const o = await c.connectAway(s.place, creds(obs!));
    keep(o.client);
    const got: { topic: string; payload: string; retain: boolean }[] = [];
    o.client!.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain }));
    await o.client!.subscribeAsync(`devices/${sen!.deviceId}/telemetry`, { qos: 1 });
    await until('the retained message', () => got.length > 0);
    t.same(got[0], { topic: `devices/${sen!.deviceId}/telemetry`, payload: 'kept', retain: true }, `set on ${s.place}, delivered on ${o.place}`);
  });

  t.test('a persistent session resumes on the other broker with its queued QoS 1', async (t) => {
    const [obs] = await c.provision([`${topology}-obs-3`], 'observer');
    const [sen] = await c.provision([`${topology}-sen-3`]);
    const o1 = await c.connectOn({ ...creds(obs!), clean: false });
    await o1.client!.subscribeAsync('devices/+/telemetry', { qos: 1 });
    await o1.client!.endAsync();
    const s = await c.connectOn(creds(sen!));
    keep(s.client);
    for (const m of ['while-away-1', 'while-away-2']) await s.client!.publishAsync(`devices/${sen!.deviceId}/telemetry`, m, { qos: 1 });
    await sleep(500);
    const got: string[] = [];
    const o2 = await c.connectAway(o1.place, { ...creds(obs!), clean: false }, got);
    keep(o2.client);
    t.not(o2.place, o1.place, `subscribed on ${o1.place}, resumed on ${o2.place}`);
    await until('the queued messages', () => got.length >= 2);
    t.same(got.sort(), [`devices/${sen!.deviceId}/telemetry while-away-1`, `devices/${sen!.deviceId}/telemetry while-away-2`], 'both queued QoS 1 messages delivered');
  });

  t.test('wills cross brokers, held to the ACL, never sent after a kick', async (t) => {
    const [obs] = await c.provision([`${topology}-obs-4`], 'observer');
    const [ok, outside, kicked, last] = await c.provision([`${topology}-will-ok`, `${topology}-will-out`, `${topology}-will-kick`, `${topology}-will-last`]);
    const o = await c.connectOn(creds(obs!));
    keep(o.client);
    await o.client!.subscribeAsync('devices/#', { qos: 1 });
    const got = collect(o.client!);
    const withWill = async (d: typeof ok, topic: string) => {
      const r = await c.connectAway(o.place, { ...creds(d!), will: { topic, payload: Buffer.from(`will of ${d!.deviceId}`), qos: 1, retain: false } });
      t.not(r.place, o.place, `${d!.deviceId} on ${r.place}, observer on ${o.place}`);
      return r.client!;
    };
    // Positive control: an allowed will, the socket lost.
    (await withWill(ok, `devices/${ok!.deviceId}/events/gone`)).stream.destroy();
    await until('the allowed will', () => got.includes(`devices/${ok!.deviceId}/events/gone will of ${ok!.deviceId}`));
    t.pass('an allowed will is delivered across brokers');
    (await withWill(outside, `devices/${ok!.deviceId}/events/spoof`)).stream.destroy();
    const k = await withWill(kicked, `devices/${kicked!.deviceId}/events/gone`);
    const kickedAt = closed(k);
    const r = await runCli(['revoke', kicked!.deviceId, '--db', c.db]);
    t.equal(r.code, 0, r.stderr);
    await kickedAt;
    // The sentinel: one more allowed will, lost on the same broker after the others. Once it is here, a will
    // sent for the spoofing or the kicked device would have been here before it.
    (await withWill(last, `devices/${last!.deviceId}/events/gone`)).stream.destroy();
    await until('the last allowed will (the sentinel)', () => got.includes(`devices/${last!.deviceId}/events/gone will of ${last!.deviceId}`));
    t.notOk(got.some((m) => m.includes('/events/spoof')), 'a will outside the device\'s ACL is not delivered');
    t.notOk(got.some((m) => m.includes(kicked!.deviceId)), 'a revoked (kicked) device\'s will is not delivered');
    k.end(true);
  });

  t.test('renewal on either broker', async (t) => {
    const [dev] = await c.provision([`${topology}-ren-1`]);
    const a = await c.connectOn(creds(dev!));
    keep(a.client);
    const first = await renew(a.client!, dev!.deviceId);
    t.equal(first.kind, 'accepted', `renewed on ${a.place}`);
    await a.client!.endAsync();
    const b = await c.connectAway(a.place, { clientId: dev!.deviceId, username: dev!.deviceId, password: first.body.accessToken as string });
    keep(b.client);
    t.equal(b.code, 0, `the renewed token connects on ${b.place}`);
    t.equal((await renew(b.client!, dev!.deviceId)).kind, 'accepted', `renewed again on ${b.place}`);
  });

  t.test('a superseded refresh credential replayed on one broker revokes the device live on the other', async (t) => {
    const [dev] = await c.provision([`${topology}-theft-1`]);
    const id = dev!.deviceId;
    const r0 = dev!.refreshCredential;
    let refresh = r0;
    let token = '';
    for (let i = 0; i < 2; i++) {
      const s = await c.connectOn({ clientId: id, username: id, password: refresh }, i % c.nodes.length);
      const a = await renew(s.client!, id);
      t.equal(a.kind, 'accepted', `rotation ${i + 1} on ${s.place}`);
      refresh = a.body.refreshCredential as string;
      token = a.body.accessToken as string;
      await s.client!.endAsync();
    }
    const live = await c.connectOn({ clientId: id, username: id, password: token });
    keep(live.client);
    const gone = closed(live.client!);
    // The replay must reach the other broker: on one node, steer it there as connectAway does, but expect a refusal.
    const replay = await c.connectAway(live.place, { clientId: id, username: id, password: r0 }).catch((err: Error) => ({ code: -1, client: null, place: err.message }));
    t.equal(replay.code, 5, 'the replay is refused (CONNACK 5)');
    await gone;
    t.pass(`the live session on ${live.place} was closed`);
    t.equal((await connect(c.url(0), { clientId: id, username: id, password: refresh })).code, 5, 'even the newest refresh credential is dead now');
  });
}
