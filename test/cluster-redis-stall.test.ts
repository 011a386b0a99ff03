import t from 'tap';
import type { MqttClient } from 'mqtt';
import { connect } from './helpers/broker.js';
import { creds, readyz, startCluster, until } from './helpers/cluster.js';
import { within } from './helpers/wait.js';

// A Redis that hangs without closing its connections (SIGSTOP here; a swapping host or a
// partition that drops packets in life): every wait on it has a deadline
// (cluster/redis-options.ts COMMAND_TIMEOUT_MS, 5 s), so devices get an answer, never silence,
// and the bus' PING probe turns the node not ready, as a lost connection does.

const ANSWER_MS = 15_000;

t.test('while Redis hangs, CONNECTs, SUBSCRIBEs and QoS 1 publishes are answered and the node says not ready; once it is back, all is as before', async (t) => {
  const c = await startCluster(t, 'workers');
  const [node] = c.nodes;
  const [clean, persistent] = await c.provision(['stall-clean', 'stall-keep']);
  const pid = c.redis.pid()!;
  const resume = () => { try { process.kill(pid, 'SIGCONT'); } catch { /* gone already */ } };
  t.teardown(resume);

  process.kill(pid, 'SIGSTOP');
  const during = await within('a clean CONNECT answered while Redis hangs', connect(c.url(), { ...creds(clean!), connectTimeout: ANSWER_MS }), ANSWER_MS);
  t.equal(during.code, 0, 'a clean session gets in (its wipe of an earlier session skipped, counted)');
  const device = during.client as MqttClient;
  const granted = await within('the SUBACK', device.subscribeAsync('devices/stall-clean/commands/+', { qos: 1 }), ANSWER_MS);
  t.same(granted.map((g) => g.qos), [1], 'a new subscription is granted (Redis gets it when it is back)');
  await within('the PUBACK', device.publishAsync('devices/stall-clean/telemetry', 'while Redis hangs', { qos: 1 }), ANSWER_MS);
  t.pass('a QoS 1 publish is acknowledged (its subscribers on this worker have it; the others miss it, counted)');
  await until('/readyz to report the hung Redis', async () => (await readyz(node!)) === 503, 30_000);
  const kept = await within('a persistent CONNECT answered', connect(c.url(), { ...creds(persistent!), clean: false, connectTimeout: ANSWER_MS }), ANSWER_MS);
  t.equal(kept.code, 3, 'a persistent session, which needs its stored state, gets CONNACK 3: server unavailable, try again');
  device.end(true);

  resume();
  await until('/readyz ready again', async () => (await readyz(node!)) === 200, 30_000);
  const after = await within('a persistent CONNECT once Redis is back', connect(c.url(), { ...creds(persistent!), clean: false }), ANSWER_MS);
  t.equal(after.code, 0, 'the persistent session connects once Redis answers again');
  after.client?.end(true);
});
