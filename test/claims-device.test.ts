// Provisioning by claim through the device client library (device/): a unit
// with only the claim file claims once, writes its credentials file (0600),
// connects, publishes and renews; started again, it uses the file and never
// claims again. A refused claim is reported with its code.
import t from 'tap';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceClient, DeviceError } from '../device/index.js';
import { createClaim } from '../operations/index.js';
import { startTestBroker } from './helpers/broker.js';

const FIELDS = ['accessToken', 'accessTokenExpiresAt', 'brokerUrl', 'deviceId', 'refreshCredential', 'refreshCredentialExpiresAt'];

t.test('DeviceClient with a claim', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { credential } = await createClaim(tb.issuer.reg, { name: 'lot9', profile: 'sensor', brokerUrl: tb.url, maxDevices: 5, idPattern: 'unit-[0-9]+' });
  const dir = t.testdir();
  const claimFile = join(dir, 'lot9.claim.json');
  writeFileSync(claimFile, JSON.stringify({ claim: 'lot9', claimCredential: credential, brokerUrl: tb.url }), { mode: 0o600 });
  const credentialsPath = join(dir, 'unit-1.json');

  const first = new DeviceClient({ credentialsPath, claim: { path: claimFile, deviceId: 'unit-1' }, renewAtFraction: 0.8 });
  const events: string[] = [];
  first.on('claimed', ({ deviceId }) => events.push(`claimed ${deviceId}`));
  first.on('connected', ({ via }) => events.push(`connected ${via}`));
  await first.start();
  t.same(events, ['claimed unit-1', 'connected token'], 'claimed once, then connected with its own token');
  t.ok(existsSync(credentialsPath), 'credentials file written');
  t.equal(statSync(credentialsPath).mode & 0o777, 0o600, 'mode 0600');
  const saved = JSON.parse(readFileSync(credentialsPath, 'utf8')) as Record<string, string>;
  t.same(Object.keys(saved).sort(), FIELDS, 'exactly the credentials-file fields');
  t.equal(saved.deviceId, 'unit-1');
  t.notMatch(readFileSync(credentialsPath, 'utf8'), /cbcl_/, 'the claim credential is not in the credentials file');
  await first.publish('devices/unit-1/telemetry', '{"t":1}', { qos: 1 });
  const renewed = await first.renewNow();
  t.ok(renewed.expiresAt.getTime() > Date.now(), 'renewed');
  t.equal(JSON.parse(readFileSync(credentialsPath, 'utf8')).accessToken, first.credentials().accessToken, 'the renewed token was saved');
  await first.stop();

  const again = new DeviceClient({ credentialsPath, claim: { path: claimFile, deviceId: 'unit-1' } });
  let claimedAgain = false;
  again.on('claimed', () => { claimedAgain = true; });
  await again.start();
  t.notOk(claimedAgain, 'started again: the file is used, no second claim');
  t.equal((await tb.issuer.reg.claims.used('lot9')), 1, 'one device provisioned through the claim');
  await again.publish('devices/unit-1/telemetry', '{"t":2}', { qos: 1 });
  await again.stop();

  const outside = new DeviceClient({ claim: { name: 'lot9', credential, deviceId: 'valve-1' }, url: tb.url, backoff: { initialMs: 100, maxMs: 200 } });
  const rejected = new Promise<{ code: string | null }>((r) => outside.once('claimRejected', r));
  const err = await outside.start().then(() => null, (e: unknown) => e);
  t.ok(err instanceof DeviceError, 'start() rejects');
  t.equal((err as DeviceError).code, 'id_not_allowed', 'with the wire code');
  t.equal((await rejected).code, 'id_not_allowed', 'claimRejected event');
  t.throws(() => outside.credentials(), { code: 'ERR_NOT_CONNECTED' }, 'no credentials without an accepted claim');
  await outside.stop();

  const badCredential = new DeviceClient({ claim: { name: 'lot9', credential: `${credential.slice(0, -2)}zz`, deviceId: 'unit-2' }, url: tb.url });
  const refused = new Promise<{ connackCode: number | null }>((r) => badCredential.once('claimRejected', r));
  await badCredential.start().catch(() => {});
  t.equal((await refused).connackCode, 4, 'a bad claim credential: CONNACK 4');
  await badCredential.stop();

  t.throws(() => new DeviceClient({ claim: { path: join(dir, 'missing.json'), deviceId: 'x' } }), { code: 'ERR_BAD_CREDENTIALS' }, 'a missing claim file');
  t.throws(() => new DeviceClient({ claim: { name: 'lot9', credential, deviceId: 'x' } }), /no broker URL/, 'no broker URL anywhere');
});
