import t from 'tap';
import { randomBytes } from 'node:crypto';
import { revokeToken } from '../operations/index.js';
import type { DeviceId, Jti, Kid } from '../registry/index.js';
import { connectDevice, startTestBroker } from './helpers/broker.js';
import { runCli } from './helpers/cli.js';
import { hasCli } from './helpers/hostile-util.js';
import { jtiOf, renewalSession } from './helpers/renewal-session.js';

// Issue 10 #7: tokens obtained by renewal belong to the family of the token they replace;
// revoking any token revokes its family; renewal is idempotent per requestId.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('token families and idempotent renewal', async (t) => {
  const tb = await startTestBroker({ authFailBurst: 1000, authFailPerSec: 100, renewBurst: 10 });
  t.teardown(() => tb.close());
  const reg = tb.issuer.reg;

  t.test('revoking the first token of a family closes the session that renewed from it, and kills every renewal', async (t) => {
    const [creds] = await tb.provision(['fam-1']);
    const t0 = creds!.accessToken;
    const s = await renewalSession(tb.url, 'fam-1', t0);
    t.teardown(() => s.client?.end(true));
    const t1 = (await s.request!()).body.accessToken as string;
    const t2 = (await s.request!()).body.accessToken as string;
    t.equal((await reg.tokens.get(jtiOf(t1)))?.family, jtiOf(t0), 'a renewal joins the family of the token it replaces');
    t.equal((await reg.tokens.get(jtiOf(t2)))?.family, jtiOf(t0), '... and so does a renewal of a renewal');

    const closed = new Promise<number>((r) => s.client!.once('close', () => r(Date.now())));
    const at = Date.now();
    const r = await revokeToken(reg, jtiOf(t0) as Jti); // as the CLI does, from its own registry connection
    t.same({ ...r, revoked: [...r.revoked].sort() }, { deviceId: 'fam-1', changed: true, familyRevoked: 3, revoked: [t0, t1, t2].map(jtiOf).sort() }, 'the whole family is revoked, each named');
    t.ok((await closed) - at < 1000, `the session holding the newest token is closed within a second (${Date.now() - at} ms)`);
    for (const [name, token] of [['T1', t1], ['T2', t2]] as const) {
      t.equal((await connectDevice(tb.url, { deviceId: 'fam-1', accessToken: token })).code, 5, `${name} (renewed from the revoked token) gets CONNACK 5`);
    }
    t.match((await reg.audit.query({ deviceId: 'fam-1' })).find((e) => e.action === 'token.revoke')?.details, { jti: jtiOf(t0), family: jtiOf(t0), tokensRevoked: 3 });
  });

  t.test('revoking a renewed token revokes its ancestors too, and a token from another family lives on', async (t) => {
    const [creds] = await tb.provision(['fam-2']);
    const other = await renewalSession(tb.url, 'fam-2', creds!.refreshCredential); // a new family: from the refresh credential
    const fresh = (await other.request!()).body.accessToken as string;
    await other.client!.endAsync();
    t.not((await reg.tokens.get(jtiOf(fresh)))?.family, jtiOf(creds!.accessToken), 'a token from a refresh session starts a family of its own');
    const s = await renewalSession(tb.url, 'fam-2', creds!.accessToken);
    t.teardown(() => s.client?.end(true));
    const t1 = (await s.request!()).body.accessToken as string;
    const closed = new Promise<void>((r) => s.client!.once('close', () => r()));
    await revokeToken(reg, jtiOf(t1) as Jti);
    await closed;
    t.equal((await connectDevice(tb.url, { deviceId: 'fam-2', accessToken: creds!.accessToken })).code, 5, 'the token it was renewed from is revoked too');
    const ok = await connectDevice(tb.url, { deviceId: 'fam-2', accessToken: fresh });
    t.equal(ok.code, 0, 'the other family is untouched');
    ok.client?.end(true);
  });

  t.test('credbroker revoke --token, in another process, names the family it revoked', { skip: !hasCli() && 'dist/ not built' }, async (t) => {
    const [creds] = await tb.provision(['fam-3']);
    const s = await renewalSession(tb.url, 'fam-3', creds!.accessToken);
    t.teardown(() => s.client?.end(true));
    const renewed = jtiOf((await s.request!()).body.accessToken as string);
    const closed = new Promise<void>((r) => s.client!.once('close', () => r()));
    const r = await runCli(['revoke', '--token', jtiOf(creds!.accessToken), '--db', tb.db]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /revoked token \S+ of device fam-3 and 1 other token of its family/);
    t.match(r.stdout, `of its family (renewed from it or it from them): ${renewed};`, 'and names it');
    await closed;
    t.pass('the session holding the renewed token is closed');
  });

  t.test('pruning keeps an expired token while its family has a live member (bounded by familyBefore)', async (t) => {
    const now = Date.now();
    const rec = (jti: string, expiresAt: number, family?: string) =>
      reg.tokens.record({ jti: jti as Jti, deviceId: 'fam-1' as DeviceId, kid: 'k' as Kid, issuedAt: expiresAt - 3_600_000, expiresAt, family: family as Jti | undefined });
    await rec('pf-root', now - 3_600_000);
    await rec('pf-live', now + 3_600_000, 'pf-root');
    await rec('pf-lone', now - 3_600_000);
    await reg.tokens.pruneExpired(now, 1000, now - 86_400_000);
    t.ok((await reg.tokens.get('pf-root')), 'the expired first token of a live family stays: revoke --token can still reach its renewals');
    t.notOk((await reg.tokens.get('pf-lone')), 'an expired token of a dead family goes');
    await reg.tokens.pruneExpired(now, 1000, now);
    t.notOk((await reg.tokens.get('pf-root')), 'past familyBefore it goes too');
    t.ok((await reg.tokens.get('pf-live')), 'the live one stays');
  });

  t.test('the same requestId re-sent gets the same answer, and no second token is minted', async (t) => {
    const [creds] = await tb.provision(['idem-1']);
    const s = await renewalSession(tb.url, 'idem-1', creds!.accessToken);
    t.teardown(() => s.client?.end(true));
    const tokensBefore = (await reg.tokens.liveFor('idem-1' as DeviceId, Date.now())).length;
    const body = { requestId: randomBytes(16).toString('base64url') };
    const first = await s.request!(body);
    const again = await s.request!(body);
    t.equal(first.kind, 'accepted');
    t.same(again.body, first.body, 're-sent afterwards: the same answer, byte for byte');
    // Two copies back to back: the second arrives while the first is being decided.
    const twin = { requestId: randomBytes(16).toString('base64url') };
    s.client!.publish('$devices/idem-1/token/renew', JSON.stringify(twin), { qos: 1 });
    s.client!.publish('$devices/idem-1/token/renew', JSON.stringify(twin), { qos: 1 });
    for (let i = 0; i < 50 && s.answers.filter((a) => a.body.requestId === twin.requestId).length < 2; i++) await sleep(100);
    const twins = s.answers.filter((a) => a.body.requestId === twin.requestId);
    t.equal(twins.length, 2, 'both copies are answered');
    t.equal(twins[0]?.body.accessToken, twins[1]?.body.accessToken, 'with the same token');
    t.equal((await reg.tokens.liveFor('idem-1' as DeviceId, Date.now())).length, tokensBefore + 2, 'two requestIds, four requests: two tokens minted');
    const fresh = await s.request!();
    t.not(fresh.body.accessToken, first.body.accessToken, 'a new requestId gets a new token');
    await s.client!.endAsync();

    // The connection broke before the answer arrived: back with the old token, same requestId.
    const lost = await renewalSession(tb.url, 'idem-1', creds!.accessToken);
    t.same((await lost.request!(body)).body, first.body, 'on a new connection with the token it asked with: the same answer');
    await lost.client!.endAsync();
    // A device that already holds the answer's token and sends the same requestId again is renewed anew.
    const holder = await renewalSession(tb.url, 'idem-1', first.body.accessToken as string);
    t.teardown(() => holder.client?.end(true));
    const anew = await holder.request!(body);
    t.equal(anew.kind, 'accepted');
    t.not(anew.body.accessToken, first.body.accessToken, 'from the token it was given: a new token (firmware with one requestId for ever still renews)');
  });
});
