// `weaken.unpatchedAedes` (bench only: what broker/aedes-patches/ change, issue 22)
// runs credbroker on aedes as published, and a process loads aedes once: asking
// for the patched one afterwards is an error, never a silent mix of the two.
import t from 'tap';
import mqtt from 'mqtt';
import { loadAedes } from '../broker/aedes-patches/load.js';
import { brokerLogLines, startTestBroker } from './helpers/broker.js';
import { within } from './helpers/wait.js';

/** Connects with clean=false, and tells whether the CONNACK says a session was present. */
async function sessionPresent(url: string, d: { deviceId: string; accessToken: string }): Promise<boolean> {
  const client = mqtt.connect(url, { clientId: d.deviceId, username: d.deviceId, password: d.accessToken, clean: false, reconnectPeriod: 0, protocolVersion: 4 });
  try {
    const connack = await within('the CONNACK', new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    }), 20_000);
    return connack.sessionPresent;
  } finally {
    await client.endAsync();
  }
}

t.test('a broker weakened with unpatchedAedes runs aedes 1.2.0 as published', async (t) => {
  const tb = await startTestBroker({}, { weaken: { unpatchedAedes: true } });
  t.teardown(() => tb.close());
  t.ok(brokerLogLines.some((l) => l.includes('broker.weakened') && l.includes('unpatchedAedes')), 'the broker says it is weakened');
  const [dev] = await tb.provision(['unpatched-1']);
  t.equal(await sessionPresent(tb.url, dev!), false, 'first CONNECT: no session');
  // An empty persistent session: the patch session-present-empty answers 1; aedes as published, 0.
  t.equal(await sessionPresent(tb.url, dev!), false, 'aedes as published: session present 0 for an empty session (the bug the patch fixes)');
  await t.rejects(loadAedes(() => {}), /aedes is already loaded unpatched in this process/, 'the patched aedes cannot be loaded beside it');
});
