import t from 'tap';
import { CredbrokerError, RegistryUnavailableError, type ErrorCode } from '../errors/index.js';
import { claimCodeFor, connackCodeFor, exitCodeFor, renewalCodeFor } from '../errors/map.js';
import { claimTopics } from '../protocol/claim.js';
import { CONNACK } from '../protocol/connack.js';
import { RENEW_REJECTION_CODES, renewTopicDevice, tokenTopics, type RenewAcceptedBody } from '../protocol/renewal.js';
import { DeviceError } from '../device/index.js';
import { RenewalExchange, type PublishRequest, type RenewedEvent } from '../device/renewal.js';

/** Every wait has a deadline. */
function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no outcome within ${ms} ms`)), ms); });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

const err = (code: ErrorCode) => new CredbrokerError(code, 'x');

t.test('the wire values are the contract outside clients check', async (t) => {
  t.same(tokenTopics('dev-1'), {
    renew: '$devices/dev-1/token/renew', accepted: '$devices/dev-1/token/accepted',
    rejected: '$devices/dev-1/token/rejected', filter: '$devices/dev-1/token/+',
  });
  t.equal(renewTopicDevice('$devices/dev-1/token/renew'), 'dev-1');
  t.equal(renewTopicDevice('$devices/dev-1/token/accepted'), null);
  t.same(claimTopics('dev-1').filter, '$claims/dev-1/provision/+');
  t.same(CONNACK, { IDENTIFIER_REJECTED: 2, SERVER_UNAVAILABLE: 3, BAD_USERNAME_OR_PASSWORD: 4, NOT_AUTHORIZED: 5 });
  t.same([...RENEW_REJECTION_CODES].sort(), ['ERR_BAD_REQUEST', 'ERR_CREDENTIAL_EXPIRED', 'ERR_DEVICE_REVOKED', 'ERR_FORBIDDEN_TOPIC', 'ERR_INTERNAL', 'ERR_RATE_LIMITED', 'ERR_REFRESH_REPLAYED', 'ERR_UNAVAILABLE']);
});

t.test('one table gives each error code its exit, CONNACK, renewal and claim code', async (t) => {
  const unavailable = new RegistryUnavailableError('database down');
  t.equal(exitCodeFor(unavailable), 5);
  t.equal(connackCodeFor(unavailable), 3);
  t.equal(renewalCodeFor(unavailable), 'ERR_UNAVAILABLE', 'renamed on the wire');
  t.equal(claimCodeFor(unavailable), null, 'a claim answers `unavailable` with its own message');
  t.equal(renewalCodeFor(err('ERR_DEVICE_REVOKED')), 'ERR_DEVICE_REVOKED');
  t.equal(renewalCodeFor(err('ERR_TOKEN_SIGNATURE')), 'ERR_INTERNAL');
  t.equal(renewalCodeFor(new Error('boom')), 'ERR_INTERNAL');
  t.equal(claimCodeFor(err('ERR_DEVICE_EXISTS')), 'id_exists');
  t.equal(claimCodeFor(err('ERR_CLAIM_UNKNOWN')), 'claim_revoked', 'a claim deleted since the CONNECT is as good as revoked');
  t.equal(claimCodeFor(err('ERR_CLAIM_ID_NOT_ALLOWED')), 'id_not_allowed');
  t.equal(connackCodeFor(err('ERR_TOKEN_EXPIRED')), 4);
  t.equal(connackCodeFor(err('ERR_INVALID_DEVICE_ID')), 2);
  t.equal(connackCodeFor(new Error('boom')), 5, 'anything unexpected is not authorized');
  // The refusals authenticate decides before any credential check, now codes of the same table.
  t.equal(connackCodeFor(err('ERR_THROTTLED')), 5);
  t.equal(connackCodeFor(err('ERR_SERVER_BUSY')), 3);
  t.equal(connackCodeFor(err('ERR_BAD_LOGIN')), 4);
  t.equal(connackCodeFor(err('ERR_CLAIM_NOT_CLEAN')), 5);
  t.equal(connackCodeFor(err('ERR_CLIENT_ID_MISMATCH')), 5);
});

t.test("DeviceError's code is the protocol's union", async (t) => {
  t.equal(new DeviceError('ERR_UNAVAILABLE', 'later').code, 'ERR_UNAVAILABLE');
  t.equal(new DeviceError('id_exists', 'taken').code, 'id_exists');
  // @ts-expect-error a code that is neither the broker's nor the client's does not type-check
  t.equal(new DeviceError('ERR_MADE_UP', 'x').code, 'ERR_MADE_UP');
});

/** A renewal exchange wired to a recording publisher: no broker, no connection. */
function exchange(opts: { timeoutMs?: number; ttlSeconds?: number; failPublish?: boolean } = {}) {
  const sent: { topic: string; body: { requestId: string; ttlSeconds?: number } }[] = [];
  const adopted: RenewAcceptedBody[] = [];
  const late: RenewedEvent[] = [];
  const x = new RenewalExchange({
    deviceId: 'dev-1', timeoutMs: opts.timeoutMs ?? 5000, ttlSeconds: opts.ttlSeconds,
    adopt: (a) => { adopted.push(a); return a.refreshCredential !== undefined; },
    late: (ev) => late.push(ev),
  });
  const publish: PublishRequest = (topic, payload, done) => {
    sent.push({ topic, body: JSON.parse(payload) as { requestId: string } });
    done(opts.failPublish ? new Error('closed') : undefined);
  };
  const answer = (topic: string, body: object) => x.receive(topic, Buffer.from(JSON.stringify(body)));
  const accepted = (requestId: string, extra: object = {}) => answer(x.topics.accepted, { requestId, accessToken: 'tok', accessTokenExpiresAt: new Date(Date.now() + 60_000).toISOString(), ...extra });
  return { x, sent, adopted, late, publish, answer, accepted };
}

t.test('the renewal exchange takes only the answer to its own request, adopted before it resolves', async (t) => {
  const { x, sent, adopted, publish, accepted } = exchange({ ttlSeconds: 300 });
  const asked = x.request(publish);
  t.equal(sent.length, 1);
  t.equal(sent[0]!.topic, '$devices/dev-1/token/renew');
  t.equal(sent[0]!.body.ttlSeconds, 300);
  t.ok(accepted('someone-else'), 'a token topic is never the application\'s');
  t.equal(adopted.length, 0, 'an answer to another request is not adopted');
  accepted(sent[0]!.body.requestId, { refreshCredential: 'r', refreshCredentialExpiresAt: new Date().toISOString() });
  const ev = await within(asked);
  t.equal(ev.rotatedRefresh, true);
  t.equal(adopted.length, 1);
  t.notOk(x.receive('devices/dev-1/telemetry', Buffer.from('{}')), 'the application\'s messages are passed on');
});

t.test('rejections carry the broker\'s code; one this client does not know is ERR_INTERNAL', async (t) => {
  const { x, sent, publish, answer } = exchange();
  const first = x.request(publish);
  answer(x.topics.rejected, { requestId: sent[0]!.body.requestId, code: 'ERR_UNAVAILABLE', message: 'retry later' });
  await t.rejects(within(first), { code: 'ERR_UNAVAILABLE', message: 'retry later' });
  const second = x.request(publish);
  answer(x.topics.rejected, { requestId: sent[1]!.body.requestId, code: 'ERR_FROM_THE_FUTURE', message: 'no' });
  await t.rejects(within(second), { code: 'ERR_INTERNAL', message: 'ERR_FROM_THE_FUTURE: no' });
  const third = x.request(publish);
  t.ok(x.receive(x.topics.accepted, Buffer.from(JSON.stringify({ requestId: sent[2]!.body.requestId, accessToken: 'tok' }))));
  await t.rejects(within(third), { code: 'ERR_BAD_ANSWER' });
});

t.test('a timed-out request still takes its late answer; only the last 8 are remembered', async (t) => {
  const { x, sent, adopted, late, publish, accepted } = exchange({ timeoutMs: 10 });
  for (let i = 0; i < 9; i++) await t.rejects(within(x.request(publish)), { code: 'ERR_RENEW_TIMEOUT' });
  accepted(sent[0]!.body.requestId); // forgotten: the ninth pushed it out
  accepted(sent[8]!.body.requestId); // the sentinel: remembered, taken
  t.equal(adopted.length, 1, 'only the remembered request is adopted');
  t.equal(late.length, 1);
  accepted(sent[8]!.body.requestId);
  t.equal(adopted.length, 1, 'a late answer is taken once');
});

t.test('a request that cannot be sent, or still waits when the connection ends, fails with the given code', async (t) => {
  const failing = exchange({ failPublish: true });
  await t.rejects(within(failing.x.request(failing.publish)), { code: 'ERR_DISCONNECTED' });
  const { x, sent, adopted, publish, accepted } = exchange();
  const waiting = [x.request(publish), x.request(publish)];
  x.failAll('ERR_STOPPED', 'client stopped');
  for (const w of waiting) await t.rejects(within(w), { code: 'ERR_STOPPED' });
  accepted(sent[0]!.body.requestId);
  t.equal(adopted.length, 0, 'a failed request is not waited for any more');
});

t.test('the device guide documents every renewal rejection code', async (t) => {
  const { readFileSync } = await import('node:fs');
  const guide = readFileSync(new URL('../provisioning.md', import.meta.url), 'utf8');
  for (const code of RENEW_REJECTION_CODES) t.match(guide, new RegExp(`\\| \`${code}\` \\|`), `provisioning.md's table has ${code}`);
});
