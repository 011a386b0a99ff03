// A claim's --id-pattern is written by an operator, the id it is matched
// against by whoever holds the claim credential. `([A-Z]+-?)+[0-9]{4}` makes a
// backtracking RegExp take seconds on 'A'×28 + '.' (18.7 s at 31): while a
// unit claims such an id, another client's QoS 1 round trips must not stall.
import t from 'tap';
import { connectDevice, startTestBroker } from './helpers/broker.js';
import { claimOnce } from './helpers/claim-client.js';
import { createClaim } from '../operations/index.js';
import { hashClaimCredential, newClaimCredential } from '../tokens/index.js';
import type { ClaimName, ProfileName } from '../registry/index.js';

t.test('a hostile id against a backtracking pattern does not stall the broker', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { credential } = await createClaim(tb.issuer.reg, { name: 'lineR', profile: 'sensor', brokerUrl: tb.url, idPattern: '([A-Z]+-?)+[0-9]{4}' });
  const [obs] = await tb.provision(['obs-1'], 'observer');
  const dev = await connectDevice(tb.url, obs!);
  t.equal(dev.code, 0);
  const client = dev.client!;
  t.teardown(() => client.end(true));
  await client.subscribeAsync('devices/obs-1/commands/ping', { qos: 1 });

  // One round trip: PUBACK of the publish and its delivery back, each within a deadline.
  let seq = 0;
  const roundTrip = async (): Promise<number> => {
    const body = String(++seq);
    const start = Date.now();
    const delivered = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`round trip ${body} not delivered within 30 s`)), 30_000);
      const on = (_topic: string, payload: Buffer) => {
        if (payload.toString() !== body) return;
        clearTimeout(timer);
        client.off('message', on);
        resolve();
      };
      client.on('message', on);
    });
    await Promise.all([client.publishAsync('devices/obs-1/commands/ping', body, { qos: 1 }), delivered]);
    return Date.now() - start;
  };
  await roundTrip();

  const times: number[] = [];
  let claiming = true;
  const loop = (async () => {
    while (claiming) times.push(await roundTrip());
    for (let i = 0; i < 5; i++) times.push(await roundTrip());
  })();
  const outcomes = [];
  for (const n of [28, 31]) outcomes.push(await claimOnce(tb.url, { id: `${'A'.repeat(n)}.`, claim: 'lineR', credential }));
  claiming = false;
  await loop;

  for (const r of outcomes) t.match(r, { code: 0, answer: 'rejected', body: { code: 'id_not_allowed' } }, 'the hostile id is refused');
  t.equal((await claimOnce(tb.url, { id: 'AB-CD1234', claim: 'lineR', credential })).answer, 'accepted', 'a matching id is still claimed');
  const worst = Math.max(...times);
  t.ok(times.length >= 9, `${times.length} round trips during and after the claims`);
  t.ok(worst < 500, `every QoS 1 round trip under 500 ms (worst ${worst} ms)`);
});

t.test('a stored pattern the linear matcher cannot run refuses claims, with the reason', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  // As an older version stored it: a backreference, which JS RegExp took and the matcher refuses.
  const credential = newClaimCredential();
  await tb.issuer.reg.claims.insert({
    name: 'old-line' as ClaimName, profile: 'sensor' as ProfileName, hash: hashClaimCredential(credential), maxDevices: 5, idPattern: '(u)\\1-[0-9]+',
    brokerUrl: tb.url, expiresAt: Date.now() + 3_600_000, createdAt: Date.now(), simulation: false,
  }, null);
  const r = await claimOnce(tb.url, { id: 'uu-1', claim: 'old-line', credential });
  t.match(r, { code: 0, answer: 'rejected', body: { code: 'id_not_allowed', message: /id pattern .* is not supported \(backreferences .*\): recreate the claim/ } }, 'refused, with the reason');
  t.equal(await tb.issuer.reg.devices.get('uu-1'), undefined, 'no device made');
});
