// broker/aedes-patches/: the changes to aedes are applied at run time, to the
// exact aedes version they were written for, never written into node_modules;
// a different aedes (version or text) is left as it is, with one line saying so.
// What each patch does is covered by the conformance suite (test/conformance-*)
// and the broker suites (sessions' queues: hostile-offline-queue, sessions).
import t from 'tap';
import { connect as netConnect } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { cpSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AEDES_VERSION, PATCHES } from '../broker/aedes-patches/patches.js';
import { planPatches } from '../broker/aedes-patches/load.js';
import { brokerLogLines, connectDevice, startTestBroker, subscribeGranted } from './helpers/broker.js';
import { until, within } from './helpers/wait.js';

const installed = realpathSync(dirname(fileURLToPath(import.meta.resolve('aedes'))));
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string>; dependencies: Record<string, string> };

/** A copy of the installed aedes' patched files and package.json, to change. */
function copy(t: { testdir(): string }): string {
  const dir = t.testdir();
  cpSync(join(installed, 'package.json'), join(dir, 'package.json'));
  for (const p of PATCHES) cpSync(join(installed, p.file), join(dir, p.file));
  return dir;
}

t.test('every patch applies to the installed aedes, which node_modules holds unchanged', async (t) => {
  const plan = planPatches(installed);
  t.equal(plan.unpatched, null);
  t.ok(plan.files);
  const files = new Set(PATCHES.map((p) => p.file));
  t.equal(Object.keys(plan.files!).length, files.size, 'one entry per patched file');
  for (const p of PATCHES) {
    t.ok(p.name && p.why, `${p.name} says what it is and why`);
    for (const e of p.edits) t.notOk(readFileSync(join(installed, p.file), 'utf8').includes(e.to), `${p.name}: node_modules/aedes/${p.file} not edited on disk`);
  }
});

t.test('aedes is pinned to the version the patches were written for, and nothing runs at install', async (t) => {
  t.equal(pkg.dependencies.aedes, AEDES_VERSION);
  for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) t.notOk(pkg.scripts[s], `no ${s} script: npm install --ignore-scripts installs the same credbroker`);
});

t.test('another aedes version: nothing applied, one line saying why', async (t) => {
  const dir = copy(t);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'aedes', version: '1.2.1' }));
  const plan = planPatches(dir);
  t.equal(plan.files, null);
  t.match(plan.unpatched, /aedes is 1\.2\.1, the patches are for 1\.2\.0/);
  t.notMatch(plan.unpatched!, /\n/);
});

t.test('the same version with changed text: nothing applied (no file half-patched), the patch named', async (t) => {
  const dir = copy(t);
  // the only patch of its file: the text it replaces is aedes' own, and no other patch's
  const patch = PATCHES.find((p) => p.name === 'close-error-lazy')!;
  const path = join(dir, patch.file);
  writeFileSync(path, readFileSync(path, 'utf8').replace(patch.edits[0]!.from, `// upstream moved this\n${patch.edits[0]!.from.replace('\n', '\n  ')}`));
  const plan = planPatches(dir);
  t.equal(plan.files, null);
  t.equal(plan.unpatched, `${patch.file} does not hold the text patch ${patch.name} replaces`);
});

t.test('a broker on the installed aedes runs it patched and warns of nothing', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  t.notOk(brokerLogLines.some((l) => l.includes('aedes.unpatched')), 'no aedes.unpatched line');
});

t.test('parser-plain-list: a client parses through a plain buffer list, also a CONNECT that comes a byte at a time', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const [dev] = await tb.provision(['plain-list-1']);
  const frame = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: dev!.deviceId, username: dev!.deviceId, password: Buffer.from(dev!.accessToken) });
  const sock = netConnect(tb.broker.ports.mqtt!, '127.0.0.1');
  t.teardown(() => sock.destroy());
  const connack = new Promise<Buffer>((resolve) => sock.once('data', resolve));
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  for (const byte of frame) await new Promise<void>((resolve) => sock.write(Buffer.from([byte]), () => resolve()));
  const answer = await within('CONNACK', connack, 20_000);
  t.same([...answer.subarray(0, 4)], [0x20, 0x02, 0x00, 0x00], 'accepted');
  const clients = (tb.broker.context.aedes as unknown as { clients: Record<string, { _parser: { _list: object } }> }).clients;
  const list = clients[dev!.deviceId]!._parser._list as { pipe?: unknown; append?: unknown };
  t.equal(typeof list.append, 'function', 'a buffer list');
  t.equal(list.pipe, undefined, 'no stream around it');
});

type IdleClient = {
  closed: boolean;
  conn: NodeJS.EventEmitter & { destroy(): void };
  duplicates: object | null;
  _inboundInflight: Set<number> | null;
  _retainedWindows?: Set<unknown> | null;
  _parser: { settings: Record<string, unknown> };
};
const aedesClient = (tb: Awaited<ReturnType<typeof startTestBroker>>, id: string) =>
  (tb.broker.context.aedes as unknown as { clients: Record<string, IdleClient | undefined> }).clients[id];

t.test('idle-client: a subscribed idle client keeps neither its CONNECT nor empty windows, and is closed when its socket closes', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const [dev] = await tb.provision(['idle-client-1']);
  const { client } = await connectDevice(tb.url, dev!);
  t.teardown(() => client?.end(true));
  t.equal(await subscribeGranted(client!, `devices/${dev!.deviceId}/commands/#`), 1, 'subscribed');
  const c = aedesClient(tb, dev!.deviceId)!;
  t.equal(c._parser.settings.protocolVersion, 4, 'the parser still knows the protocol version');
  t.notOk('password' in c._parser.settings || 'username' in c._parser.settings, 'but not the CONNECT (its password)');
  t.equal(c.conn.listenerCount('close'), 1, "one 'close' listener on the socket: aedes' (no stream.finished, no unauthenticated-socket entry)");
  t.equal(c.duplicates, null, 'no dedupe dictionary before a delivery');
  t.equal(c._inboundInflight, null, 'no QoS 2 window before a QoS 2 PUBLISH');
  // no retained message was replayed: nothing to keep for late copies (was 5 s)
  await until('the retained window set to go', () => c._retainedWindows == null, 2_000);
  // a socket closed under the client (no 'end', no 'error') still ends it
  c.conn.destroy();
  await until('the client to close', () => c.closed && aedesClient(tb, dev!.deviceId) === undefined, 10_000);
  t.pass('closed and unregistered');
});

t.test('idle-client-birth: another broker born on the bus while a client has had no delivery leaves the broker serving', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const [dev, obs] = await tb.provision(['idle-birth-1', 'idle-birth-2']);
  const idle = await connectDevice(tb.url, dev!);
  t.teardown(() => idle.client?.end(true));
  t.equal(aedesClient(tb, dev!.deviceId)!.duplicates, null, 'an idle client, no dedupe dictionary');
  // What a restarted worker announces on the bus; on one process the broker's own emitter carries it the same way.
  const mq = (tb.broker.context.aedes as unknown as { mq: { emit(p: object, cb: (err?: Error) => void): void } }).mq;
  await new Promise<void>((res, rej) => mq.emit({ topic: '$SYS/another-broker/birth', payload: Buffer.from('another-broker') }, (err) => (err ? rej(err) : res())));
  // The broker still serves: the idle client subscribes, a new device connects and publishes.
  t.equal(await subscribeGranted(idle.client!, `devices/${dev!.deviceId}/commands/#`), 1, 'the idle client still subscribes');
  const other = await connectDevice(tb.url, obs!);
  t.teardown(() => other.client?.end(true));
  t.equal(other.code, 0, 'a new device connects');
  await other.client!.publishAsync(`devices/${obs!.deviceId}/telemetry`, 'x', { qos: 1 });
  t.pass('and publishes');
});

t.test('inbound-inflight-lazy: the QoS 2 window comes with the first QoS 2 PUBLISH and still bounds the unreleased ones', async (t) => {
  const tb = await startTestBroker({ maxInflightInbound: 2 });
  t.teardown(() => tb.close());
  const [dev, raw] = await tb.provision(['inflight-lazy-1', 'inflight-lazy-2']);
  const { client } = await connectDevice(tb.url, dev!);
  t.teardown(() => client?.end(true));
  const c = aedesClient(tb, dev!.deviceId)!;
  t.equal(c._inboundInflight, null, 'none before');
  await within('PUBCOMP', new Promise<void>((resolve, reject) => client!.publish(`devices/${dev!.deviceId}/telemetry`, 'x', { qos: 2 }, (err) => (err ? reject(err) : resolve()))), 10_000);
  t.equal(c._inboundInflight?.size, 0, 'made, and released by the PUBREL');
  // A client that withholds PUBREL: the third unreleased QoS 2 PUBLISH closes it.
  const sock = netConnect(tb.broker.ports.mqtt!, '127.0.0.1');
  t.teardown(() => sock.destroy());
  const got: Buffer[] = [];
  sock.on('data', (d: Buffer) => got.push(d));
  const closedP = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: raw!.deviceId, username: raw!.deviceId, password: Buffer.from(raw!.accessToken) }));
  await until('CONNACK', () => Buffer.concat(got).length >= 4, 10_000);
  t.same([...Buffer.concat(got).subarray(0, 4)], [0x20, 0x02, 0x00, 0x00], 'accepted');
  const publish = (messageId: number) => sock.write(mqttPacket.generate({ cmd: 'publish', topic: `devices/${raw!.deviceId}/telemetry`, payload: Buffer.from('y'), qos: 2, messageId, retain: false, dup: false }));
  for (const messageId of [1, 2]) {
    publish(messageId);
    await until(`PUBREC ${messageId}`, () => Buffer.concat(got).includes(Buffer.from([0x50, 0x02, 0x00, messageId])), 10_000);
  }
  publish(3);
  await within('the connection to close at the third', closedP, 10_000);
  t.pass('two PUBRECs, then closed at the third');
});
