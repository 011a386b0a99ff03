// The ACL compiled once per verified token (issue 23): a device that reconnects with the same token gets the
// very compiled object its first session had (cached with the token), and its checks still hold; with the
// cache off each session compiles its own. A renewal's new ACL replaces the session's, never changes the shared one.
// Devices of one profile share one template of it (the device id goes in at its own levels).
import t from 'tap';
import { sessionOf } from '../broker/session.js';
import { closed, connectDevice, startTestBroker, subscribeGranted } from './helpers/broker.js';
import { until } from './helpers/wait.js';

for (const cache of [true, false]) {
  t.test(`same token, ${cache ? 'same compiled ACL (cache on)' : 'a compiled ACL per session (cache off)'}`, async (t) => {
    const tb = await startTestBroker(cache ? {} : { verifiedTokenCache: 0 });
    t.teardown(() => tb.close());
    const [dev, other] = await tb.provision(['acl-cache-a', 'acl-cache-b']);
    // Listed once aedes reports the client ready, just after its CONNACK.
    const aclOf = async (id: string) => {
      await until(`the session of ${id} listed`, () => tb.broker.context.sessions.clientOf(id)?.closed === false);
      return sessionOf(tb.broker.context.sessions.clientOf(id))?.acl;
    };

    const first = await connectDevice(tb.url, dev!);
    t.equal(first.code, 0, 'first CONNECT accepted');
    const acl1 = await aclOf(dev!.deviceId);
    t.ok(acl1, 'the first session holds a compiled ACL');
    const gone = closed(first.client!);
    first.client!.end(true);
    await gone;

    const again = await connectDevice(tb.url, dev!);
    t.equal(again.code, 0, 'second CONNECT with the same token accepted');
    t.teardown(() => again.client?.end(true));
    const acl2 = await aclOf(dev!.deviceId);
    if (cache) t.equal(acl2, acl1, 'the second session holds the same compiled object');
    else t.not(acl2, acl1, 'with the cache off, a compiled ACL of its own');

    // The shared object still checks: its own commands yes, another device's no.
    t.equal(await subscribeGranted(again.client!, `devices/${dev!.deviceId}/commands/#`), 1, 'own commands granted');
    t.equal(await subscribeGranted(again.client!, `devices/${other!.deviceId}/commands/#`), 128, 'another device\'s commands refused');

    // Another device's token: its own compiled ACL, never this one.
    const o = await connectDevice(tb.url, other!);
    t.teardown(() => o.client?.end(true));
    const otherAcl = await aclOf(other!.deviceId);
    t.not(otherAcl, acl2, 'another token, another compiled ACL');
    // ... over the one template of their profile (acl/compile.ts), with its own device id in it.
    t.ok(acl2!.rules, 'a session ACL is a template and a device id');
    t.equal(otherAcl!.rules, acl2!.rules, 'two devices of one profile share one template');
    t.equal(otherAcl!.device, other!.deviceId);
    t.equal(await subscribeGranted(o.client!, `devices/${other!.deviceId}/commands/#`), 1, 'the other device: its own commands granted');
    t.equal(await subscribeGranted(o.client!, `devices/${dev!.deviceId}/commands/#`), 128, 'the other device: the first one\'s refused');
  });
}
