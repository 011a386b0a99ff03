// The verified-token cache against a real broker and MQTT.js (issue #12): a
// device whose token the broker has accepted reconnects without a second
// signature check, and a revoked device, a revoked token, an expired token and
// a key killed by `keys rotate --now` are each refused on their very next
// CONNECT, with the cache warm as with the cache off.
import t from 'tap';
import type { MqttClient } from 'mqtt';
import { issueAccessToken, revokeDevices, revokeToken } from '../operations/index.js';
import type { DeviceId, Jti } from '../registry/index.js';
import { rotateKeys } from '../tokens/index.js';
import { closed, connectDevice, startTestBroker } from './helpers/broker.js';
import { authCount, scrape, verifyCount } from './helpers/hostile-util.js';

const jtiOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { jti: Jti }).jti;

for (const cache of [true, false]) {
  t.test(`refused on the very next CONNECT, cache ${cache ? 'warm' : 'off'}`, async (t) => {
    // leewaySec 1: the expired token is refused a second after its exp (the cache itself stops at exp).
    const tb = await startTestBroker({ leewaySec: 1, ...(cache ? {} : { verifiedTokenCache: 0 }) });
    t.teardown(() => tb.close());
    const http = tb.broker.ports.http!;
    const metric = (name: string, labels: Record<string, string>) => scrape(http, `credbroker_verified_token_cache_${name}`, labels);
    const [keyDev, revDev, tokDev, , okDev] = await tb.provision(['kr-a', 'rv-b', 'tr-d', 'ex-c', 'ok-e']);
    const expTok = await issueAccessToken(tb.issuer, 'ex-c' as DeviceId, { ttlMs: 10_000 });
    const devices = [keyDev!, revDev!, tokDev!, { deviceId: 'ex-c', accessToken: expTok.token }, okDev!];

    // Warm: each device connects, leaves, and connects again (kept open: its kick shows when the broker applied a change).
    const live = new Map<string, { client: MqttClient; closed: Promise<number> }>();
    for (const d of devices) {
      const first = await connectDevice(tb.url, d);
      t.equal(first.code, 0, `${d.deviceId}: first CONNECT accepted`);
      first.client!.end(true);
    }
    const verifiesWarm = await verifyCount(tb.broker);
    for (const d of devices) {
      const again = await connectDevice(tb.url, d);
      t.equal(again.code, 0, `${d.deviceId}: second CONNECT accepted`);
      live.set(d.deviceId, { client: again.client!, closed: closed(again.client!) });
    }
    if (cache) {
      t.equal(await metric('lookups_total', { result: 'hit' }), devices.length, 'every second CONNECT was answered from the cache');
      t.equal(await verifyCount(tb.broker), verifiesWarm, 'no signature was checked a second time');
      t.equal(await metric('entries', {}), devices.length, 'one entry per accepted token (/metrics)');
    } else {
      t.equal(await metric('lookups_total', {}), 0, 'cache off: no lookups');
      t.equal(await verifyCount(tb.broker), verifiesWarm + devices.length, 'cache off: every CONNECT verified');
    }
    const again = async (d: { deviceId: string; accessToken: string }, code: number, what: string) => {
      const r = await connectDevice(tb.url, d);
      t.equal(r.code, code, `${d.deviceId}: ${what}: CONNACK ${code} on the very next CONNECT`);
      r.client?.end(true);
    };

    // A revoked device.
    revokeDevices(tb.issuer.reg, ['rv-b' as DeviceId], 'test');
    await live.get('rv-b')!.closed;
    await again(revDev!, 5, 'device revoked');
    t.equal(await authCount(tb.broker, { reason: 'device_revoked' }), 1, 'refused as device_revoked');

    // A revoked token (its family).
    revokeToken(tb.issuer.reg, jtiOf(tokDev!.accessToken));
    await live.get('tr-d')!.closed;
    await again(tokDev!, 5, 'token revoked');
    t.equal(await authCount(tb.broker, { reason: 'token_revoked' }), 1, 'refused as token_revoked');

    // The cache still answers for a device nothing happened to.
    live.get('ok-e')!.client.end(true);
    await live.get('ok-e')!.closed;
    const hitsBefore = await metric('lookups_total', { result: 'hit' });
    await again(okDev!, 0, 'untouched device');
    if (cache) t.equal(await metric('lookups_total', { result: 'hit' }), hitsBefore + 1, 'answered from the cache');

    // An expired token: the broker closes the session at exp + leeway; the next CONNECT is past both.
    await live.get('ex-c')!.closed;
    const past = expTok.expiresAt + 1000 + 1100 - Date.now();
    if (past > 0) await new Promise((r) => setTimeout(r, past));
    await again({ deviceId: 'ex-c', accessToken: expTok.token }, 4, 'token expired');
    t.equal(await authCount(tb.broker, { reason: 'expired' }), 1, 'refused as expired');
    if (cache) t.ok(await metric('evictions_total', { reason: 'expired' }) >= 1, 'its entry died at exp');

    // A key killed by `keys rotate --now`: the broker reloads its keyring and closes the key's sessions.
    const rotation = await rotateKeys(tb.issuer.reg, { immediate: true });
    t.ok(rotation.retired.length >= 1, 'the signing key is killed');
    await live.get('kr-a')!.closed;
    await again(keyDev!, 4, 'key rotated out with --now');
    t.equal(await authCount(tb.broker, { reason: 'unknown_kid' }), 1, 'refused as unknown_kid');
    if (cache) t.ok(await metric('evictions_total', { reason: 'key' }) >= 1, 'the killed key\'s entries were purged');
    await again(okDev!, 4, 'any token of the killed key');
  });
}
