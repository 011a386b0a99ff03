// Interop with third-party MQTT clients: Debian's mosquitto_pub / mosquitto_sub
// (package mosquitto-clients) over TCP and TLS, and, when installed, Python paho-mqtt.
// Each part skips cleanly when its client is not installed (CI installs them).
import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { DeviceCredentials } from '../provisioning/index.js';
import { connectDevice, startTestBroker, type TestBroker } from './helpers/broker.js';
import { makeDevCerts } from './helpers/dev-certs.js';

const has = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.error === undefined;
};
const hasMosquitto = has('mosquitto_pub', ['--help']) && has('mosquitto_sub', ['--help']);
const hasOpenssl = has('openssl', ['version']);
const python = '/usr/bin/python3';
const hasPaho = spawnSync(python, ['-c', 'import paho.mqtt.client'], { stdio: 'ignore' }).status === 0;

interface Run {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Exit code (null when killed by a signal), and whether the watchdog had to kill it. */
  readonly done: Promise<{ code: number | null; timedOut: boolean }>;
}

function run(cmd: string, args: string[], timeoutMs = 10_000): Run {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Run = {
    child, stdout: '', stderr: '',
    done: new Promise((resolve) => {
      let timedOut = false;
      const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
      child.on('close', (code) => { clearTimeout(timer); resolve({ code, timedOut }); });
      child.on('error', () => { clearTimeout(timer); resolve({ code: -1, timedOut }); });
    }),
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { r.stdout += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { r.stderr += d; });
  return r;
}

/** Common mosquitto client arguments: MQTT 3.1.1, device id as client id and username, token as password. */
function mosqArgs(port: number, creds: Pick<DeviceCredentials, 'deviceId' | 'accessToken'>, tls?: { ca: string; host?: string }): string[] {
  return [
    '-h', tls?.host ?? '127.0.0.1', '-p', String(port), '-V', 'mqttv311',
    '-i', creds.deviceId, '-u', creds.deviceId, '-P', creds.accessToken,
    ...(tls ? ['--cafile', tls.ca] : []),
  ];
}

async function mosquittoSuite(t: Test, tb: TestBroker, port: number, tls?: { ca: string; host?: string }) {
  const tag = tls ? 'tls' : 'tcp';
  const [sensor] = await tb.provision([`mq-${tag}-sensor`]);
  const [observer] = await tb.provision([`mq-${tag}-observer`], 'observer');

  t.test('mosquitto_sub (observer) receives what mosquitto_pub (sensor) publishes', async (t) => {
    const sub = run('mosquitto_sub', [...mosqArgs(port, observer!, tls), '-t', 'devices/+/telemetry', '-q', '1', '-v', '-C', '1', '-W', '15'], 20_000);
    t.teardown(() => { sub.child.kill(); });
    const topic = `devices/${sensor!.deviceId}/telemetry`;
    // mosquitto_sub block-buffers stdout into a pipe, so "subscribed" cannot be observed:
    // publish until the subscriber (-C 1) has its message and exits.
    let exited = false;
    void sub.done.then(() => { exited = true; });
    let pubs = 0;
    while (!exited && pubs < 30) {
      const pub = run('mosquitto_pub', [...mosqArgs(port, sensor!, tls), '-t', topic, '-q', '1', '-m', `{"temp":21.5,"via":"${tag}"}`]);
      const p = await pub.done;
      if (pubs++ === 0) t.equal(p.code, 0, `mosquitto_pub exits 0 (stderr: ${pub.stderr.trim()})`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const s = await sub.done;
    t.equal(s.code, 0, 'mosquitto_sub exits 0 after one message');
    t.notOk(s.timedOut, 'mosquitto_sub did not time out');
    t.match(sub.stdout, new RegExp(`^${topic} \\{"temp":21.5,"via":"${tag}"\\}$`, 'm'), 'observer got the message');
  });

  t.test('a bad token is refused: mosquitto_pub exits non-zero with "bad user name or password"', async (t) => {
    const forged = { deviceId: sensor!.deviceId, accessToken: sensor!.accessToken.slice(0, -4) + (sensor!.accessToken.endsWith('AAAA') ? 'BBBB' : 'AAAA') };
    for (const [name, creds] of [['tampered signature', forged], ['garbage', { deviceId: sensor!.deviceId, accessToken: 'not-a-token' }]] as const) {
      const pub = run('mosquitto_pub', [...mosqArgs(port, creds, tls), '-t', `devices/${sensor!.deviceId}/telemetry`, '-m', 'x']);
      const r = await pub.done;
      t.not(r.code, 0, `${name}: exit code ${r.code}`);
      t.notOk(r.timedOut, `${name}: did not hang`);
      t.match(pub.stderr, /Connection Refused: (bad user name or password|not authori[sz]ed)/i, `${name}: stderr says refused`);
      t.notMatch(pub.stderr + pub.stdout, sensor!.accessToken, `${name}: no token echoed`);
    }
    // A valid token of another device used with this device's id: also a bad credential.
    const other = { deviceId: sensor!.deviceId, accessToken: observer!.accessToken };
    const pub = run('mosquitto_pub', [...mosqArgs(port, other, tls), '-t', `devices/${sensor!.deviceId}/telemetry`, '-m', 'x']);
    t.not((await pub.done).code, 0, 'token of another device: refused');
    t.match(pub.stderr, /Connection Refused: bad user name or password/);
  });

  t.test('a sensor subscribing to # is refused', async (t) => {
    const sub = run('mosquitto_sub', [...mosqArgs(port, sensor!, tls), '-t', '#', '-q', '1', '-v', '-W', '8'], 15_000);
    const r = await sub.done;
    t.notOk(r.timedOut, 'mosquitto_sub exits on its own');
    t.match(sub.stderr, /All subscription requests were denied/, 'mosquitto_sub reports the refused subscription');
    t.equal(sub.stdout, '', 'no message delivered');

    // With an allowed filter next to it, only the refused one gets 0x80 (granted 128).
    const mixed = run('mosquitto_sub', [...mosqArgs(port, sensor!, tls), '-t', `devices/${sensor!.deviceId}/commands/#`, '-t', 'devices/+/telemetry', '-q', '1', '-d', '-W', '2'], 10_000);
    t.notOk((await mixed.done).timedOut, 'mosquitto_sub stopped after -W 2');
    t.match(mixed.stdout, /Subscribed \(mid: \d+\): 1, 128/, 'own commands granted, devices/+/telemetry refused with 0x80');
    t.notMatch(mixed.stderr, /All subscription requests were denied/, 'not all refused');
  });
}

t.test('mosquitto clients over TCP', { skip: !hasMosquitto && 'mosquitto_pub/mosquitto_sub not installed (apt-get install mosquitto-clients)' }, async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  await mosquittoSuite(t, tb, tb.broker.ports.mqtt!);
});

t.test('mosquitto clients over TLS with the development CA', {
  skip: (!hasMosquitto && 'mosquitto_pub/mosquitto_sub not installed (apt-get install mosquitto-clients)') || (!hasOpenssl && 'openssl not installed'),
}, async (t) => {
  const certs = makeDevCerts();
  t.teardown(() => certs.remove());
  const tb = await startTestBroker({ tlsPort: 0, tlsCert: certs.serverCert, tlsKey: certs.serverKey });
  t.teardown(() => tb.close());
  await mosquittoSuite(t, tb, tb.broker.ports.tls!, { ca: certs.caCert });

  t.test('by host name localhost, and an untrusted CA is refused by the client', async (t) => {
    const [dev] = await tb.provision(['mq-tls-byname']);
    const topic = `devices/${dev!.deviceId}/telemetry`;
    const ok = run('mosquitto_pub', [...mosqArgs(tb.broker.ports.tls!, dev!, { ca: certs.caCert, host: 'localhost' }), '-t', topic, '-m', 'x']);
    t.equal((await ok.done).code, 0, `localhost is in the certificate (stderr: ${ok.stderr.trim()})`);
    const otherCa = makeDevCerts();
    t.teardown(() => otherCa.remove());
    const bad = run('mosquitto_pub', [...mosqArgs(tb.broker.ports.tls!, dev!, { ca: otherCa.caCert }), '-t', topic, '-m', 'x']);
    const r = await bad.done;
    t.not(r.code, 0, 'a CA that did not sign the server certificate: refused');
    t.match(bad.stderr, /certificate verify failed|Protocol error|Error/i);
  });
});

const PAHO = `
import json, sys, paho.mqtt.client as mqtt
port, dev, token, topic, payload = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ca = sys.argv[6] if len(sys.argv) > 6 else None
result = {}
c = mqtt.Client(client_id=dev, protocol=mqtt.MQTTv311)
c.username_pw_set(dev, token)
if ca:
    c.tls_set(ca_certs=ca)
def on_connect(client, userdata, flags, rc):
    result["connack"] = rc
    if rc != 0:
        client.disconnect()
        return
    info = client.publish(topic, payload, qos=1)
    result["mid"] = info.mid
def on_publish(client, userdata, mid):
    result["puback"] = mid
    client.disconnect()
c.on_connect = on_connect
c.on_publish = on_publish
c.connect("127.0.0.1", int(port), keepalive=30)
c.loop_start()
import time
deadline = time.time() + 10
while time.time() < deadline and not ("puback" in result or result.get("connack", 0) != 0):
    time.sleep(0.02)
c.loop_stop()
print(json.dumps(result))
`;

t.test('python paho-mqtt (optional)', { skip: !hasPaho && 'python3-paho-mqtt not installed' }, async (t) => {
  const certs = hasOpenssl ? makeDevCerts() : null;
  t.teardown(() => certs?.remove());
  const tb = await startTestBroker(certs ? { tlsPort: 0, tlsCert: certs.serverCert, tlsKey: certs.serverKey } : {});
  t.teardown(() => tb.close());
  const [sensor] = await tb.provision(['paho-sensor']);
  const [observer] = await tb.provision(['paho-observer'], 'observer');
  const obs = await connectDevice(tb.url, observer!);
  t.equal(obs.code, 0);
  t.teardown(() => obs.client?.end(true));
  await obs.client!.subscribeAsync('devices/+/telemetry', { qos: 1 });
  const topic = `devices/${sensor!.deviceId}/telemetry`;

  const paho = async (port: number, token: string, payload: string, ca?: string) => {
    const r = run(python, ['-c', PAHO, String(port), sensor!.deviceId, token, topic, payload, ...(ca ? [ca] : [])], 15_000);
    const done = await r.done;
    t.equal(done.code, 0, `python exits 0 (stderr: ${r.stderr.trim().slice(-300)})`);
    return JSON.parse(r.stdout.trim() || '{}') as { connack?: number; puback?: number };
  };

  const got = new Promise<string>((r) => obs.client!.once('message', (tp, p) => r(`${tp} ${p}`)));
  t.match(await paho(tb.broker.ports.mqtt!, sensor!.accessToken, 'from-paho'), { connack: 0, puback: 1 }, 'paho connects with the token and gets PUBACK');
  t.equal(await got, `${topic} from-paho`, 'observer received the paho publish');
  t.match(await paho(tb.broker.ports.mqtt!, 'not-a-token', 'x'), { connack: 4 }, 'bad token: CONNACK 4');
  if (certs) {
    const got2 = new Promise<string>((r) => obs.client!.once('message', (tp, p) => r(`${tp} ${p}`)));
    t.match(await paho(tb.broker.ports.tls!, sensor!.accessToken, 'from-paho-tls', certs.caCert), { connack: 0, puback: 1 }, 'paho over TLS with ca.crt');
    t.equal(await got2, `${topic} from-paho-tls`);
  }
});
