// CONNECT and CONNACK (MQTT 3.1.1 §3.1, §3.2), session state (§3.1.2.4), and
// the malformed CONNECTs MQTT says to close on.
import { connectPacket, FLAG, handConnect, type ConformanceCase, type Credential } from '../helpers/raw-mqtt.js';

const login = (c: Credential) => ({ clientId: c.deviceId, username: c.deviceId, password: c.accessToken });
const USER_PASS = FLAG.username | FLAG.password | FLAG.clean;

export const CONNECT_CASES: readonly ConformanceCase[] = [
  ...[2, 6].map((level): ConformanceCase => ({
    ids: ['MQTT-3.1.2-2'], title: `protocol level ${level}: CONNACK 1, then close`,
    async run({ open, device, t }) {
      const c = await open();
      c.send(handConnect({ level, flags: USER_PASS, ...login(await device()) }));
      t.equal((await c.expect('connack')).returnCode, 1);
      await c.expectClose();
    },
  })),
  {
    ids: ['MQTT-3.1.2-1'], title: 'protocol name other than MQTT: closed without CONNACK',
    async run({ open, device }) {
      const c = await open();
      c.send(handConnect({ name: 'MQTX', flags: USER_PASS, ...login(await device()) }));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.2-3'], title: 'reserved connect flag set: close',
    async run({ open, device }) {
      const c = await open();
      c.send(handConnect({ flags: USER_PASS | 0x01, ...login(await device()) }));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.2-14'], title: 'will QoS 3: close',
    async run({ open, device }) {
      const c = await open();
      c.send(handConnect({ flags: USER_PASS | FLAG.will | FLAG.willQos1 | FLAG.willQos2, will: { topic: 'conf/will', payload: 'x' }, ...login(await device()) }));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.2-13'], title: 'will QoS set without the will flag: close',
    async run({ open, device }) {
      const c = await open();
      c.send(handConnect({ flags: USER_PASS | FLAG.willQos1, ...login(await device()) }));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.3-10', 'MQTT-4.7.3-1'], title: 'empty will topic: close',
    async run({ open, device }) {
      const c = await open();
      c.send(handConnect({ flags: USER_PASS | FLAG.will, will: { topic: '', payload: 'x' }, ...login(await device()) }));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.3-10'], title: 'will topic with a wildcard: close',
    async run({ open, device }) {
      const c = await open();
      c.send(handConnect({ flags: USER_PASS | FLAG.will, will: { topic: 'conf/+/will', payload: 'x' }, ...login(await device()) }));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.2-18', 'MQTT-3.1.2-20'], title: 'user name and password present while both flags are 0: close',
    async run({ open, device }) {
      const c = await open();
      c.send(handConnect({ flags: FLAG.clean, ...login(await device()) }));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.2-20'], title: 'password present while its flag is 0: close',
    async run({ open, device }) {
      const c = await open();
      c.send(handConnect({ flags: FLAG.username | FLAG.clean, ...login(await device()) }));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.2-22'], title: 'password flag without the user name flag: close',
    async run({ open, device }) {
      const cred = await device();
      const c = await open();
      c.send(handConnect({ flags: FLAG.password | FLAG.clean, clientId: cred.deviceId, password: cred.accessToken }));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.3-8'], title: 'empty client id with clean session 0: CONNACK 2, then close',
    async run({ open, device, t }) {
      const cred = await device();
      const c = await open();
      c.send(handConnect({ flags: FLAG.username | FLAG.password, clientId: '', username: cred.deviceId, password: cred.accessToken }));
      t.equal((await c.expect('connack')).returnCode, 2);
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.3-9'], title: 'empty client id with clean session 1: CONNACK 2, then close',
    credbroker: 'MQTT lets a server assign an id here; a credbroker client id is the device id its token names, so an empty one is rejected as an identifier at once',
    async run({ open, device, t }) {
      const c = await open();
      c.send(connectPacket(await device(), { clientId: '' }));
      t.equal((await c.expect('connack')).returnCode, 2);
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.2.2-5'], title: 'client id of another device: a refusal CONNACK, then close',
    credbroker: 'the client id must be the device id the token names (SPEC "Connecting"): refused with 5, not authorized',
    async run({ open, device, t }) {
      const [a, b] = [await device(), await device()];
      const c = await open();
      c.send(connectPacket(a, { clientId: b.deviceId }));
      t.not((await c.expect('connack')).returnCode, 0);
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.0-1'], title: 'a first packet other than CONNECT: close',
    async run({ open }) {
      const c = await open();
      c.send({ cmd: 'pingreq' });
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.0-2'], title: 'a second CONNECT: close',
    async run({ session, device }) {
      const cred = await device();
      const c = await session(cred);
      c.send(connectPacket(cred));
      await c.expectClose();
    },
  },
  {
    ids: ['MQTT-3.1.4-4', 'MQTT-3.2.2-1'], title: 'clean session 1: CONNACK 0 with session present 0',
    async run({ session, device, t }) {
      const c = await session(await device());
      t.equal(c.sessionPresent, false);
    },
  },
  {
    ids: ['MQTT-3.2.2-2', '§3.1.2.4'], title: 'clean session 0 with a stored session that holds no subscription: session present 1',
    async run({ session, device, t }) {
      const cred = await device();
      const first = await session(cred, { clean: false });
      t.equal(first.sessionPresent, false, 'no session before');
      first.send({ cmd: 'disconnect' });
      await first.expectClose();
      const again = await session(cred, { clean: false });
      t.equal(again.sessionPresent, true, 'the empty session is present');
    },
  },
  {
    ids: ['MQTT-3.2.2-2'], title: 'clean session 0 with a stored session that holds a subscription: session present 1',
    async run({ session, device, t }) {
      const cred = await device();
      const first = await session(cred, { clean: false });
      first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `conf/${cred.deviceId}/s`, qos: 1 }] });
      await first.expect('suback');
      first.send({ cmd: 'disconnect' });
      await first.expectClose();
      t.equal((await session(cred, { clean: false })).sessionPresent, true);
    },
  },
  {
    ids: ['MQTT-3.1.2-6', 'MQTT-3.2.2-1'], title: 'a clean session ends the stored one: clean 0 after it gets session present 0',
    async run({ session, device, t }) {
      const cred = await device();
      const first = await session(cred, { clean: false });
      first.send({ cmd: 'disconnect' });
      await first.expectClose();
      const clean = await session(cred, { clean: true });
      t.equal(clean.sessionPresent, false);
      clean.send({ cmd: 'disconnect' });
      await clean.expectClose();
      t.equal((await session(cred, { clean: false })).sessionPresent, false);
    },
  },
  {
    ids: ['MQTT-3.12.4-1'], title: 'PINGREQ: PINGRESP',
    async run({ session, device }) {
      const c = await session(await device());
      c.send({ cmd: 'pingreq' });
      await c.expect('pingresp');
    },
  },
  {
    ids: ['MQTT-3.14.4-1', 'MQTT-3.1.2-10'], title: 'DISCONNECT: the server closes, and the will is not published',
    async run({ session, device, t }) {
      const [watcher, dying] = [await device(), await device()];
      const topic = `conf/${dying.deviceId}/will`;
      const w = await session(watcher);
      w.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
      await w.expect('suback');
      const d = await session(dying, { will: { topic, payload: Buffer.from('gone'), qos: 0, retain: false } });
      d.send({ cmd: 'disconnect' });
      await d.expectClose();
      // Sentinel: a publish after the close reaches the watcher; the will would have come first.
      const s = await session(await device());
      s.send({ cmd: 'publish', topic, payload: Buffer.from('sentinel'), qos: 0, retain: false, dup: false });
      const p = await w.expect('publish');
      t.equal(String(p.payload), 'sentinel', 'no will before the sentinel');
    },
  },
];
