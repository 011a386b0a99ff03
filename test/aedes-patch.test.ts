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
import { brokerLogLines, startTestBroker } from './helpers/broker.js';
import { within } from './helpers/wait.js';

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
