// The operator API under /api/v1 (SPEC "Operators, the API and the console"): real
// HTTP over loopback with fetch, a real broker, MQTT.js devices, on the registry
// engine of the run (CREDBROKER_TEST_BACKEND=postgres for PostgreSQL).
import t from 'tap';
import { startTestBroker, connectDevice, closed } from './helpers/broker.js';
import { until } from './helpers/wait.js';
import { addOperator, issueOperatorToken } from '../operations/operators.js';

const tb = await startTestBroker();
t.teardown(() => tb.close());
const base = `http://127.0.0.1:${tb.broker.ports.http}/api/v1`;
const reg = tb.issuer.reg;
const creds = await tb.provision(['api-dev-01', 'api-dev-02', 'api-dev-03', 'pump-001', 'pump-002']);
const [viewer, operator, admin] = await Promise.all([addOperator(reg, 'vera', 'viewer'), addOperator(reg, 'otto', 'operator'), addOperator(reg, 'ada', 'admin')]);
const tokens = {
  viewer: (await issueOperatorToken(reg, 'vera')).token,
  operator: (await issueOperatorToken(reg, 'otto')).token,
  admin: (await issueOperatorToken(reg, 'ada')).token,
};

interface Answer { status: number; body: any; headers: Headers }
async function call(method: string, path: string, opts: { token?: string; cookie?: string; csrf?: string; body?: unknown; raw?: string; type?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.csrf) headers['x-csrf-token'] = opts.csrf;
  const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  if (payload !== undefined) headers['content-type'] = opts.type ?? 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: payload, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

async function signIn(name: string, password: string): Promise<{ cookie: string; csrf: string; answer: Answer }> {
  const answer = await call('POST', '/session', { body: { name, password } });
  const setCookie = answer.headers.get('set-cookie') ?? '';
  return { cookie: setCookie.split(';')[0]!, csrf: answer.body?.csrfToken, answer };
}

t.test('no credential: 401 on every route but sign-in and the OpenAPI document', async (t) => {
  for (const [m, p] of [['GET', '/devices'], ['GET', '/devices/api-dev-01'], ['POST', '/devices/api-dev-01/revoke'], ['GET', '/audit'], ['GET', '/stats'], ['POST', '/keys/rotate'], ['GET', '/session']] as const) {
    const a = await call(m, p);
    t.equal(a.status, 401, `${m} ${p}: 401`);
    t.equal(a.body.error.code, 'ERR_API_UNAUTHENTICATED');
  }
  t.equal((await call('GET', '/devices', { token: 'cbop_nottherightshape' })).status, 401, 'a malformed token: 401');
  t.equal((await call('GET', '/openapi.json')).status, 200, 'the OpenAPI document is open');
});

t.test('devices: paging, search and filters on the server, with connected', async (t) => {
  const live = await connectDevice(tb.url, creds[0]!);
  t.equal(live.code, 0);
  t.teardown(() => live.client?.end(true));
  const first = await call('GET', '/devices?limit=2', { token: tokens.viewer });
  t.equal(first.status, 200);
  t.same(first.body.devices.map((d: { id: string }) => d.id), ['api-dev-01', 'api-dev-02']);
  t.equal(first.body.devices[0].connected, true, 'a device with a live session is connected');
  t.equal(first.body.devices[1].connected, false);
  t.equal(first.body.next, 'api-dev-02');
  const rest = await call('GET', `/devices?limit=10&after=${first.body.next}`, { token: tokens.viewer });
  t.same(rest.body.devices.map((d: { id: string }) => d.id), ['api-dev-03', 'pump-001', 'pump-002']);
  t.equal(rest.body.next, null, 'the last page has no next');
  const search = await call('GET', '/devices?search=pump-', { token: tokens.viewer });
  t.same(search.body.devices.map((d: { id: string }) => d.id), ['pump-001', 'pump-002'], 'search is an id prefix');
  t.equal((await call('GET', '/devices?status=gone', { token: tokens.viewer })).status, 400, 'a bad status: 400');
  t.equal((await call('GET', '/devices?profile=nope', { token: tokens.viewer })).status, 404, 'an unknown profile: 404');
  t.equal((await call('GET', '/devices?limit=0', { token: tokens.viewer })).status, 400);
  t.equal((await call('GET', '/devices?colour=red', { token: tokens.viewer })).status, 400, 'an unknown parameter: 400');

  const detail = await call('GET', '/devices/api-dev-01', { token: tokens.viewer });
  t.equal(detail.status, 200);
  t.equal(detail.body.device.id, 'api-dev-01');
  t.equal(detail.body.liveTokens.length, 1, 'its live token, by jti');
  t.ok(detail.body.liveTokens[0].jti);
  t.equal(detail.body.session.deviceId, 'api-dev-01', 'its live session');
  t.ok(detail.body.refreshCredentials.length >= 1, 'refresh credential states');
  t.ok(Array.isArray(detail.body.recentAudit));
  const text = JSON.stringify(detail.body);
  t.notOk(text.includes(creds[0]!.accessToken), 'never the token');
  t.notOk(text.includes(creds[0]!.refreshCredential), 'never the refresh credential');
  t.equal((await call('GET', '/devices/no-such-device', { token: tokens.viewer })).status, 404);
});

t.test('roles: a viewer may not revoke (403), nor an operator rotate keys', async (t) => {
  const a = await call('POST', '/devices/api-dev-02/revoke', { token: tokens.viewer, body: { reason: 'try' } });
  t.equal(a.status, 403);
  t.equal(a.body.error.code, 'ERR_API_FORBIDDEN');
  t.equal((await reg.devices.get('api-dev-02'))!.status, 'active', 'nothing revoked');
  t.equal((await call('POST', '/keys/rotate', { token: tokens.operator })).status, 403, 'operator: no key rotation');
  const rotated = await call('POST', '/keys/rotate', { token: tokens.admin });
  t.equal(rotated.status, 200, 'admin rotates');
  t.ok(rotated.body.activeKid);
  const keys = await call('GET', '/keys', { token: tokens.viewer });
  t.equal(keys.body.keys.filter((k: { status: string }) => k.status === 'active').length, 1);
  t.notOk(JSON.stringify(keys.body).includes('"d"'), 'no private key material');
  const events = await reg.audit.query({ action: 'keys.rotate' });
  t.equal(events[0]!.actor, 'operator:ada', 'audited under the admin\'s name');
});

t.test('cookie session: CSRF required; revoke closes the live MQTT session within a second; audited under the operator', async (t) => {
  const { cookie, csrf, answer } = await signIn('otto', operator.password);
  t.equal(answer.status, 200);
  t.same({ name: answer.body.name, role: answer.body.role }, { name: 'otto', role: 'operator' });
  const setCookie = answer.headers.get('set-cookie')!;
  t.match(setCookie, /HttpOnly/);
  t.match(setCookie, /SameSite=Strict/);
  t.notMatch(setCookie, /Secure/, 'not Secure over plain HTTP on loopback');
  t.equal((await call('GET', '/session', { cookie })).body.csrfToken, csrf, 'GET /session gives the CSRF token back');

  const live = await connectDevice(tb.url, creds[2]!);
  t.equal(live.code, 0);
  const noCsrf = await call('POST', '/devices/api-dev-03/revoke', { cookie, body: { reason: 'stolen' } });
  t.equal(noCsrf.status, 403, 'a cookie request without X-CSRF-Token: 403');
  t.equal(noCsrf.body.error.code, 'ERR_API_CSRF');
  t.equal((await call('POST', '/devices/api-dev-03/revoke', { cookie, csrf: 'x'.repeat(43), body: { reason: 'stolen' } })).status, 403, 'a wrong CSRF token: 403');

  const gone = closed(live.client!, 10_000);
  const t0 = Date.now();
  const revoked = await call('POST', '/devices/api-dev-03/revoke', { cookie, csrf, body: { reason: 'reported stolen' } });
  t.equal(revoked.status, 200);
  t.same(revoked.body, { deviceId: 'api-dev-03', revoked: true, tokensRevoked: 1 });
  const at = await gone;
  t.ok(at - t0 < 1000, `session closed within a second of the API revoke (${at - t0} ms)`);
  const [row] = await reg.audit.query({ deviceId: 'api-dev-03', action: 'device.revoke' });
  t.equal(row!.actor, 'operator:otto', 'the audit row names the operator');
  t.equal(row!.details?.reason, 'reported stolen');

  const restored = await call('POST', '/devices/api-dev-03/restore', { cookie, csrf });
  t.same(restored.body, { deviceId: 'api-dev-03', restored: true });
  t.equal((await reg.audit.query({ deviceId: 'api-dev-03', action: 'device.restore' }))[0]!.actor, 'operator:otto');

  t.equal((await call('DELETE', '/session', { cookie, csrf })).status, 200, 'sign out');
  t.equal((await call('GET', '/devices', { cookie })).status, 401, 'the cookie is dead after sign-out');
  const again = await call('POST', '/session', { cookie, body: { name: 'otto', password: operator.password } });
  t.equal(again.status, 200, 'a browser still sending the dead cookie signs in again');
});

t.test('sign-in: a wrong password is 401; throttled per name (429), before the password is checked', async (t) => {
  const wrong = await call('POST', '/session', { body: { name: 'vera', password: 'wrong' } });
  t.equal(wrong.status, 401);
  t.equal(wrong.body.error.code, 'ERR_BAD_LOGIN');
  t.equal((await call('POST', '/session', { body: { name: 'nobody', password: 'x' } })).body.error.message, wrong.body.error.message, 'an unknown name reads the same');
  for (let i = 0; i < 4; i++) await call('POST', '/session', { body: { name: 'vera', password: `wrong-${i}` } });
  const throttled = await call('POST', '/session', { body: { name: 'vera', password: viewer.password } });
  t.equal(throttled.status, 429, 'the sixth attempt for the name is throttled, even with the right password');
  t.equal(throttled.body.error.code, 'ERR_THROTTLED');
  t.equal((await signIn('ada', admin.password)).answer.status, 200, 'another name from the same address still signs in');
  t.equal((await call('POST', '/session', { raw: '{"name": "x", ' })).status, 400, 'bad JSON: 400');
});

t.test('claims, grants, profiles, sessions, audit and stats', async (t) => {
  const claim = await call('POST', '/claims', { token: tokens.operator, body: { name: 'lot-7', profile: 'sensor', maxDevices: 5, ttl: '7d' } });
  t.equal(claim.status, 201);
  t.match(claim.body.claimCredential, /^cbcl_/, 'the claim credential, shown once');
  const claims = await call('GET', '/claims', { token: tokens.viewer });
  t.equal(claims.body.claims[0].name, 'lot-7');
  t.notOk(JSON.stringify(claims.body).includes(claim.body.claimCredential), 'listing never shows it');
  t.equal((await call('POST', '/claims', { token: tokens.viewer, body: { name: 'lot-8', profile: 'sensor' } })).status, 403);
  t.same((await call('POST', '/claims/lot-7/revoke', { token: tokens.operator, body: { reason: 'done' } })).body, { name: 'lot-7', revoked: true });

  const grant = await call('POST', '/grants', { token: tokens.operator, body: { name: 'tech-anna', subscribe: ['devices/pump-001/telemetry'], ttl: '30m', reason: 'inspection' } });
  t.equal(grant.status, 201);
  t.ok(grant.body.token, 'the grant token, shown once');
  const session = await connectDevice(tb.url, { deviceId: 'grant:tech-anna', accessToken: grant.body.token } as never);
  t.equal(session.code, 0, 'the grant connects');
  const grants = await call('GET', '/grants?active=true', { token: tokens.viewer });
  t.same(grants.body.grants.map((g: { name: string }) => g.name), ['tech-anna']);
  t.notOk(JSON.stringify(grants.body).includes(grant.body.token));
  const gone = closed(session.client!, 10_000);
  t.same((await call('POST', '/grants/tech-anna/revoke', { token: tokens.operator, body: { reason: 'done' } })).body, { name: 'tech-anna', revoked: true });
  await gone;
  t.equal((await reg.audit.query({ action: 'grant.revoke' }))[0]!.actor, 'operator:otto');

  const profiles = await call('GET', '/profiles', { token: tokens.viewer });
  t.same(profiles.body.profiles.map((p: { name: string }) => p.name), ['observer', 'sensor']);
  t.equal(profiles.body.profiles[1].devices, 5);

  const live = await connectDevice(tb.url, creds[3]!);
  t.teardown(() => live.client?.end(true));
  const sessions = await call('GET', '/sessions?device=pump-001', { token: tokens.viewer });
  t.equal(sessions.body.sessions[0].deviceId, 'pump-001');

  const audit = await call('GET', '/audit?action=device.*&limit=1', { token: tokens.viewer });
  t.equal(audit.body.events.length, 1);
  t.ok(audit.body.next, 'a cursor for the rest');
  const older = await call('GET', `/audit?action=device.*&limit=1&after=${audit.body.next}`, { token: tokens.viewer });
  t.ok(older.body.events[0].id < audit.body.events[0].id, 'the next page is older');
  const byDevice = await call('GET', '/audit?device=api-dev-03&since=1h', { token: tokens.viewer });
  t.ok(byDevice.body.events.every((e: { deviceId: string }) => e.deviceId === 'api-dev-03'));

  await until('the stats to count the live session', async () => (await call('GET', '/stats', { token: tokens.viewer })).body.sessions >= 1, 10_000);
  const stats = await call('GET', '/stats', { token: tokens.viewer });
  t.same(stats.body.devices, { active: 5, revoked: 0 });
  t.ok(stats.body.rates.length >= 1, 'at least the current minute');
  t.ok(stats.body.rates.at(-1).connectsPerMinute >= 1, 'connects counted');
});

t.test('bad requests: unknown route 404, wrong method 405, body too large 413, not JSON 400', async (t) => {
  const none = await call('GET', '/nothing-here', { token: tokens.viewer });
  t.equal(none.status, 404);
  t.equal(none.body.error.code, 'ERR_API_NO_ROUTE');
  t.equal((await call('DELETE', '/devices', { token: tokens.admin })).status, 405);
  t.equal((await call('POST', '/claims', { token: tokens.admin, raw: JSON.stringify({ name: 'x'.repeat(70_000) }) })).status, 413);
  t.equal((await call('POST', '/claims', { token: tokens.admin, raw: 'name=x', type: 'application/x-www-form-urlencoded' })).status, 400, 'a form post is no JSON');
  t.equal((await call('POST', '/devices/api-dev-01/revoke', { token: tokens.admin, body: { reason: 'x', extra: 1 } })).status, 400, 'an unknown field');
  const health = await fetch(`http://127.0.0.1:${tb.broker.ports.http}/healthz`);
  t.equal(health.status, 200, 'the ops port still answers its own paths');
});
