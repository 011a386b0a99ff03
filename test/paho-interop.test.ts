// Eclipse Paho's MQTT 3.1.1 interoperability suite (eclipse/paho.mqtt.testing,
// interoperability/client_test.py, vendored with its small local changes listed in
// test/vendor/paho-interop/README.md) against a real broker with token authentication,
// one process and `serve --workers 2` on a Redis bus (devices must see one broker either
// way): every client id the suite uses is a provisioned device and sends its access token.
// Each Paho case is one assertion; the cases credbroker answers differently by design
// must fail, and fail at the step that the difference explains.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setProfile } from '../operations/index.js';
import { provisionDevices, type Issuer } from '../provisioning/index.js';
import { brokerLogLines, startTestBroker } from './helpers/broker.js';
import { startCluster } from './helpers/cluster.js';

const SUITE_DIR = fileURLToPath(new URL('./vendor/paho-interop/', import.meta.url));
// Every client id client_test.py connects with (cleanup's "clean-retained" is a local rename).
const CLIENT_IDS = ['myclientid', 'myclientid2', 'clean-retained'];
// The suite publishes and subscribes across the whole tree ("#", "+/+", "/#"), wills included.
const PROFILE = { name: 'paho', publish: ['#'], subscribe: ['#'] };
// A filter the paho profile cannot grant: `$` topics belong to the broker (SPEC ACLs).
const NO_SUBSCRIBE = '$paho/nosubscribe';

const PASSING = [
  'testBasic', 'test_keepalive', 'test_offline_message_queueing', 'test_overlapping_subscriptions',
  'test_redelivery_on_reconnect', 'test_retained_messages', 'test_subscribe_failure', 'test_unsubscribe',
];
// Deliberate differences: why, and the client_test.py line the case must fail at.
const DIFFERS: Record<string, { why: string; failsAt: RegExp }> = {
  test_zero_length_clientid: {
    why: 'the client id must be a provisioned device id (SPEC Connecting), so an empty one is refused even with a clean session',
    failsAt: /self\.assertEqual\(fails, False\)/,
  },
  test_dollar_topics: {
    why: 'a publish to a $ topic is refused by the ACL ($ patterns are never in a profile) and a refused publish closes the connection by default; Paho says to omit this case on such servers',
    failsAt: /assert self\.__receiver\.outMsgs == \{\}/,
  },
};

interface Verdict { readonly result: string; readonly output: string }

/** unittest -v on stderr: "name (__main__.Test.name) ... " then the case's own tracebacks, then ok / FAIL / ERROR. */
function verdicts(stderr: string): Map<string, Verdict> {
  const out = new Map<string, Verdict>();
  const starts = [...stderr.matchAll(/^(test\w+) \(__main__\.Test[\w.]*\) \.\.\. /gm)];
  starts.forEach((m, i) => {
    const end = i + 1 < starts.length ? starts[i + 1]!.index : stderr.length;
    const body = stderr.slice(m.index + m[0].length, end);
    const result = /(?:^|\n)(ok|FAIL|ERROR)\s*(?:\n|$)/.exec(body)?.[1] ?? /^(ok|FAIL|ERROR)\b/.exec(body)?.[1] ?? 'none';
    out.set(m[1]!, { result, output: body });
  });
  return out;
}

/** Provisions the suite's client ids on `issuer`'s registry, runs client_test.py against 127.0.0.1:`port`; `brokerLog` is what the broker has logged so far. */
async function runSuite(t: Test, issuer: Issuer, port: number, dir: string, brokerLog: () => string[]): Promise<void> {
  await setProfile(issuer.reg, PROFILE);
  const res = await provisionDevices(issuer, CLIENT_IDS.map((id, i) => ({ line: i + 2, id })), { profile: PROFILE.name, brokerUrl: `mqtt://127.0.0.1:${port}` });
  const creds = res.provisioned;
  const credsFile = join(dir, 'paho-credentials.json');
  writeFileSync(credsFile, JSON.stringify(Object.fromEntries(creds.map((c) => [c.deviceId, [c.deviceId, c.accessToken]]))), { mode: 0o600 });

  // --hostname, not -h: upstream's option loop reads -h as --help.
  const args = ['client_test.py', '--hostname=127.0.0.1', `--port=${port}`, `--credentials=${credsFile}`, `--nosubscribe_topic_filter=${NO_SUBSCRIBE}`];
  const logFrom = brokerLog().length;
  const child = spawn('python3', args, { cwd: SUITE_DIR, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  // The suite sleeps about 40 s by itself (15 s of it for the keepalive case).
  const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
  // A python3 that cannot start is a failure here (exit -1), never a skip.
  const code = await new Promise<number | null>((r) => { child.on('close', r); child.on('error', () => r(-1)); });
  clearTimeout(timer);
  // What the suite says about the choices MQTT leaves to a server (QoS 0 queueing, overlapping subscriptions).
  for (const line of stdout.split('\n').filter((l) => l.startsWith('This server'))) t.comment(line);

  const got = verdicts(stderr);
  const tail = `\n--- stdout\n${stdout.slice(-3000)}\n--- stderr\n${stderr.slice(-6000)}`;
  t.same([...got.keys()].sort(), [...PASSING, ...Object.keys(DIFFERS)].sort(), `the suite ran every known case${got.size === 0 ? tail : ''}`);
  for (const name of PASSING) {
    const v = got.get(name);
    t.equal(v?.result, 'ok', `${name} passes${v?.result === 'ok' ? '' : `\n${v?.output ?? tail}`}`);
  }
  // A case that should pass did not: what the broker logged about the suite's sessions says why.
  if (PASSING.some((name) => got.get(name)?.result !== 'ok')) {
    for (const line of brokerLog().slice(logFrom).filter((l) => /"event":"(session|wire|acl|limit|auth|client|queue)/.test(l))) t.comment(line);
  }
  for (const [name, { why, failsAt }] of Object.entries(DIFFERS)) {
    const v = got.get(name);
    t.equal(v?.result, 'FAIL', `${name} fails by design: ${why}`);
    t.match(v?.output ?? '', failsAt, `${name} fails at the step its difference explains`);
  }
  t.match(stderr, new RegExp(`^FAILED \\(failures=${Object.keys(DIFFERS).length}\\)$`, 'm'), 'unittest counts only the deliberate differences as failures');
  t.equal(code, 1, 'client_test.py exits 1 (its two deliberate failures)');
  for (const c of creds) t.notMatch(stdout + stderr, c.accessToken, `no token of ${c.deviceId} in the suite's output`);
}

t.test('the Paho interoperability suite (MQTT 3.1.1) with token authentication, one broker process', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  await runSuite(t, tb.issuer, tb.broker.ports.mqtt!, tb.dir, () => brokerLogLines);
});

t.test('the Paho interoperability suite (MQTT 3.1.1) with token authentication, serve --workers 2 on a Redis bus', async (t) => {
  const cluster = await startCluster(t, 'workers');
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-paho-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const node = cluster.nodes[0]!;
  await runSuite(t, node.issuer, node.mqttPort, dir, () => node.lines());
});
