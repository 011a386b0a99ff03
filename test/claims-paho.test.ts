// A third-party client driven only from SPEC "Provisioning by claim" (and
// "Connecting"/"Renewal" for what follows): Debian's python3-paho-mqtt claims an
// id, reconnects with the credentials it received, publishes and renews.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { createClaim } from '../operations/index.js';
import { connectDevice, startTestBroker } from './helpers/broker.js';

const python = '/usr/bin/python3';
const hasPaho = spawnSync(python, ['-c', 'import paho.mqtt.client'], { stdio: 'ignore' }).status === 0;

const CLAIM_AND_USE = `
import json, sys, time, uuid
import paho.mqtt.client as mqtt

port, device_id, claim_name, claim_credential = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
out = {}

def run(client, until, seconds=15):
    client.loop_start()
    deadline = time.time() + seconds
    while time.time() < deadline and not until():
        time.sleep(0.02)
    client.loop_stop()

# 1. Claim: client id = the device id, user name claim:<NAME>, password = the claim credential.
answer = {}
request_id = uuid.uuid4().hex
c = mqtt.Client(client_id=device_id, protocol=mqtt.MQTTv311, clean_session=True)
c.username_pw_set("claim:" + claim_name, claim_credential)
def on_connect(client, userdata, flags, rc):
    out["claim_connack"] = rc
    if rc == 0:
        client.subscribe("$claims/%s/provision/+" % device_id, qos=1)
def on_subscribe(client, userdata, mid, granted):
    out["claim_suback"] = list(granted)
    client.publish("$claims/%s/provision" % device_id, json.dumps({"requestId": request_id}), qos=1)
def on_message(client, userdata, msg):
    body = json.loads(msg.payload)
    if body.get("requestId") == request_id:
        answer["topic"] = msg.topic
        answer["body"] = body
def on_disconnect(client, userdata, rc):
    out["claim_closed"] = True
c.on_connect, c.on_subscribe, c.on_message, c.on_disconnect = on_connect, on_subscribe, on_message, on_disconnect
c.connect("127.0.0.1", port, keepalive=30)
run(c, lambda: "body" in answer or out.get("claim_connack", 0) != 0)
out["claim_answer_topic"] = answer.get("topic")
creds = answer.get("body", {})
out["claim_fields"] = sorted(creds.keys())
# The broker closes the claim session after its answer.
run(c, lambda: out.get("claim_closed", False), 10)
c.disconnect()

# 2. Connect as the device with the access token received; publish; renew in-band.
renewed = {}
d = mqtt.Client(client_id=device_id, protocol=mqtt.MQTTv311, clean_session=True)
d.username_pw_set(device_id, creds.get("accessToken", ""))
def d_connect(client, userdata, flags, rc):
    out["device_connack"] = rc
    if rc == 0:
        client.subscribe("$devices/%s/token/+" % device_id, qos=1)
def d_subscribe(client, userdata, mid, granted):
    info = client.publish("devices/%s/telemetry" % device_id, json.dumps({"t": 21.5}), qos=1)
    out["telemetry_mid"] = info.mid
    client.publish("$devices/%s/token/renew" % device_id, json.dumps({"requestId": "renew-1"}), qos=1)
def d_publish(client, userdata, mid):
    if mid == out.get("telemetry_mid"):
        out["telemetry_puback"] = True
def d_message(client, userdata, msg):
    body = json.loads(msg.payload)
    if body.get("requestId") == "renew-1":
        renewed["topic"] = msg.topic
        renewed["token_changed"] = body.get("accessToken") not in (None, creds.get("accessToken"))
d.on_connect, d.on_subscribe, d.on_publish, d.on_message = d_connect, d_subscribe, d_publish, d_message
d.connect("127.0.0.1", port, keepalive=30)
run(d, lambda: "topic" in renewed and out.get("telemetry_puback") or out.get("device_connack", 0) != 0)
d.disconnect()
out["renew_topic"] = renewed.get("topic")
out["renew_token_changed"] = renewed.get("token_changed")
print(json.dumps(out))
`;

t.test('python paho-mqtt claims, connects, publishes and renews', { skip: !hasPaho && 'python3-paho-mqtt not installed' }, async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { credential } = await createClaim(tb.issuer.reg, { name: 'paho-lot', profile: 'sensor', brokerUrl: tb.url, maxDevices: 3, idPattern: 'paho-[0-9]+' });
  const [observer] = await tb.provision(['paho-observer'], 'observer');
  const obs = await connectDevice(tb.url, observer!);
  t.teardown(() => obs.client?.end(true));
  await obs.client!.subscribeAsync('devices/+/telemetry', { qos: 1 });
  const seen = new Promise<string>((r) => obs.client!.once('message', (topic, p) => r(`${topic} ${p}`)));

  const child = spawn(python, ['-c', CLAIM_AND_USE, String(tb.broker.ports.mqtt), 'paho-0001', 'paho-lot', credential], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearTimeout(timer);
  t.equal(code, 0, `python exits 0 (stderr: ${stderr.trim().slice(-400)})`);
  const out = JSON.parse(stdout.trim() || '{}') as Record<string, unknown>;
  t.match(out, {
    claim_connack: 0,
    claim_suback: [1],
    claim_answer_topic: '$claims/paho-0001/provision/accepted',
    claim_fields: ['accessToken', 'accessTokenExpiresAt', 'brokerUrl', 'deviceId', 'refreshCredential', 'refreshCredentialExpiresAt', 'requestId'],
    claim_closed: true,
    device_connack: 0,
    telemetry_puback: true,
    renew_topic: '$devices/paho-0001/token/accepted',
    renew_token_changed: true,
  });
  t.equal(await seen, 'devices/paho-0001/telemetry {"t": 21.5}', 'the observer got the paho device\'s telemetry');
  t.equal((await tb.issuer.reg.claims.used('paho-lot')), 1);
});
