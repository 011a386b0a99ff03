import t from 'tap';
import type { DeviceId } from '../registry/index.js';
import { connect, connectDevice, startTestBroker } from './helpers/broker.js';
import { renewalSession } from './helpers/renewal-session.js';

// Issue 10 #11: a rotated-out (previous) refresh credential is good for a grace window
// after its rotation, for a device that lost the answer; after it, using it is theft.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('the previous refresh credential: good within the grace window, theft after it', async (t) => {
  const tb = await startTestBroker({ refreshGraceMs: 2000, authFailBurst: 1000, authFailPerSec: 100 });
  t.teardown(() => tb.close());
  const [creds] = await tb.provision(['gr-1']);
  const r0 = creds!.refreshCredential;
  const s = await renewalSession(tb.url, 'gr-1', r0);
  const a = await s.request!();
  t.equal(a.kind, 'accepted', 'R0 rotated: R1 handed out, R0 now previous');
  await s.client!.endAsync();

  const within = await connect(tb.url, { clientId: 'gr-1', username: 'gr-1', password: r0 });
  t.equal(within.code, 0, 'within the window, R0 (the device lost the answer) still gets in');
  await within.client!.endAsync();

  const live = (await connectDevice(tb.url, { deviceId: 'gr-1', accessToken: a.body.accessToken as string })).client!;
  t.teardown(() => live.end(true));
  const closed = new Promise<number>((r) => live.once('close', () => r(Date.now())));
  await sleep(2500);
  const t0 = Date.now();
  const late = await connect(tb.url, { clientId: 'gr-1', username: 'gr-1', password: r0 });
  t.equal(late.code, 5, 'past the window, R0 is refused (CONNACK 5)');
  t.ok((await closed) - t0 < 1000, 'the live session of the device is closed within a second');
  t.equal((await tb.issuer.reg.devices.require('gr-1' as DeviceId)).status, 'revoked', 'the device is revoked');
  const theft = (await tb.issuer.reg.audit.query({ deviceId: 'gr-1' })).find((e) => e.action === 'security.refresh_replay');
  t.match(theft?.details, { event: 'theft', credential: 'grace_expired' }, 'audited as theft: previous credential past its grace window');
  t.equal((await connect(tb.url, { clientId: 'gr-1', username: 'gr-1', password: a.body.refreshCredential as string })).code, 5, 'R1 is dead too');
});

t.test('refreshGraceMs is a setting with a duration syntax', async (t) => {
  const { validateConfig } = await import('../broker/index.js');
  t.equal(validateConfig({}).refreshGraceMs, 600_000, 'default 10 minutes');
  t.equal(validateConfig({ refreshGraceMs: '30m' }).refreshGraceMs, 1_800_000);
  t.throws(() => validateConfig({ refreshGraceMs: 'soon' }), { code: 'ERR_INVALID_DURATION' }, 'a bad duration is one clear line');
});
