// Logs an operator can use (issue 11 #4), read from a real `credbroker serve`
// process's stdout: refused logins at info, rate-limited per address (a
// 10,000-attempt flood writes a bounded number of lines), kicks and revocations
// at info, ISO 8601 timestamps, --log-format pretty|json, no duplicate client.error.
import t from 'tap';
import { resolveLogFormat } from '../broker/logger.js';
import { connect, connectDevice } from './helpers/broker.js';
import { jwtPayload, runCli } from './helpers/cli.js';
import { connectPacket, floodFromChild, scrape, sleep } from './helpers/hostile-util.js';
import { startServe } from './helpers/serve-process.js';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const ATTEMPTS = 10_000;

/** Polls until `pred` holds (or the time is up): the broker logs asynchronously. */
async function until(pred: () => boolean, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await sleep(50);
  return pred();
}

t.test(`a ${ATTEMPTS.toLocaleString('en-US')}-attempt refused flood from one address writes a bounded number of lines`, async (t) => {
  const serve = await startServe(); // stdout is a pipe: JSON by default
  t.teardown(() => serve.stop());
  const before = serve.lines().length;
  const t0 = Date.now();
  const packets = Array.from({ length: 10 }, (_, i) => connectPacket({ clientId: `victim-${i}`, username: `victim-${i}`, password: `not-a-token-${i}` }));
  const flood = await floodFromChild(serve.mqttPort, packets, ATTEMPTS, 100);
  t.equal(flood.child.code, 0, `the flood ran ${flood.child.stderr}`);
  const answered = (flood.codes['4'] ?? 0) + (flood.codes['5'] ?? 0);
  t.equal(answered, ATTEMPTS, `every attempt refused with CONNACK 4 or 5: ${JSON.stringify(flood.codes)}`);
  await sleep(500);
  const counted = await scrape(serve.httpPort, 'credbroker_log_lines_suppressed_total', { event: 'auth.refused' });
  t.equal(await serve.stop(), 0, 'serve stopped cleanly on SIGTERM');
  const seconds = (Date.now() - t0) / 1000;

  const during = serve.records().slice(before);
  const refused = during.filter((r) => r.event === 'auth.refused');
  const summaries = during.filter((r) => r.event === 'auth.refused_suppressed');
  // The bound (defaults): 5 lines per address, then one per 10 s; one summary line a minute and one at shutdown.
  const perAddress = 5 + Math.ceil(0.1 * seconds);
  const summaryLines = Math.ceil(seconds / 60) + 1;
  const bound = perAddress + summaryLines + 2; // + broker.stopping and broker.stopped
  const events = during.reduce<Record<string, number>>((a, r) => ({ ...a, [String(r.event)]: (a[String(r.event)] ?? 0) + 1 }), {});
  t.comment(`${ATTEMPTS} refused attempts in ${flood.seconds.toFixed(1)} s; ${during.length} log lines from the flood's start to exit ${JSON.stringify(events)}; bound for ${seconds.toFixed(0)} s: ${bound}`);
  t.ok(refused.length <= perAddress, `auth.refused lines ≤ 5 + 0.1/s × ${seconds.toFixed(0)} s = ${perAddress}`);
  t.ok(refused.length >= 5, 'the first refusals are each logged');
  t.ok(during.length <= bound, `all lines written during the flood ≤ ${bound}: ${during.length}`);
  const held = summaries.reduce((a, r) => a + Number(r.suppressed), 0);
  t.equal(refused.length + held, ATTEMPTS, 'every refusal is either a line or counted in a summary');
  t.equal(counted, held, 'and in credbroker_log_lines_suppressed_total');
  t.same((summaries.at(-1)!.top as unknown[])[0], { address: '127.0.0.1', count: held }, 'the summary names the address');
  const first = refused[0]!;
  t.match(first, { level: 30, event: 'auth.refused', reason: 'malformed', address: '127.0.0.1', connack: 4, msg: 'connect refused' }, 'one line: device, reason, address, at info');
  t.match(first.device, /^victim-\d$/, 'the device id claimed');
  t.ok(during.every((r) => ISO.test(String(r.time))), 'ISO 8601 timestamps');
});

t.test('kicks (expired, revoked, token revoked, ACL) and revocations at info; no duplicate client.error', async (t) => {
  // Debug level, so that a duplicate client.error line would show; the lines asserted here are level 30 (info).
  const serve = await startServe(['--log-level', 'debug'], { CREDBROKER_LEEWAY_SEC: '1' });
  t.teardown(() => serve.stop());
  const [ex, acl, rv, tk] = await serve.provision(['exp-1', 'acl-1', 'rev-1', 'tok-1']);
  const [shortLived] = await serve.provision(['exp-2'], { ttlMs: 2000 });
  const url = `mqtt://127.0.0.1:${serve.mqttPort}`;
  const c = async (creds: typeof ex) => {
    const r = await connectDevice(url, creds!);
    t.equal(r.code, 0, `${creds!.deviceId} connects`);
    return r.client!;
  };
  const clients = [await c(shortLived), await c(acl), await c(rv), await c(tk), await c(ex)];
  t.teardown(() => { for (const cl of clients) cl.end(true); });
  const find = (pred: (r: Record<string, unknown>) => boolean) => serve.records().find(pred);
  const kick = (device: string, reason: string) => () => !!find((r) => r.event === 'session.kick' && r.device === device && r.reason === reason);

  // Expired: a 2 s token, 1 s leeway.
  t.ok(await until(kick('exp-2', 'expired')), 'expired session: one kick line');
  // ACL: a publish outside the device's topics closes the connection (default --denied-publish disconnect).
  clients[1]!.publish('devices/someone-else/telemetry', 'x');
  t.ok(await until(kick('acl-1', 'acl_violation')), 'ACL violation: one kick line');
  // Revocations from the CLI: the device, and one token.
  t.equal((await runCli(['revoke', 'rev-1', '--db', serve.db])).code, 0, 'revoke rev-1');
  const jti = String(jwtPayload(tk!.accessToken).jti);
  t.equal((await runCli(['revoke', '--token', jti, '--db', serve.db])).code, 0, 'revoke tok-1\'s token');
  t.ok(await until(kick('rev-1', 'device_revoked')), 'revoked device: one kick line');
  t.ok(await until(kick('tok-1', 'token_revoked')), 'revoked token: one kick line');
  t.ok(await until(() => !!find((r) => r.event === 'revocation.applied' && r.jti === jti)), 'token revocation applied: one line');
  // Refused logins: a garbage token, a revoked device.
  t.equal((await connect(url, { clientId: 'exp-1', username: 'exp-1', password: 'garbage' })).code, 4);
  t.equal((await connectDevice(url, rv!)).code, 5);
  t.ok(await until(() => !!find((r) => r.event === 'auth.refused' && r.device === 'rev-1')), 'refusal logged');

  const records = serve.records();
  const one = (event: string, match: Record<string, unknown>) => {
    const found = records.filter((r) => r.event === event && Object.entries(match).every(([k, v]) => r[k] === v));
    t.equal(found.length, 1, `one ${event} line for ${JSON.stringify(match)}`);
    t.equal(found[0]?.level, 30, `${event} is at info`);
    return found[0];
  };
  one('session.kick', { device: 'exp-2', reason: 'expired' });
  one('session.kick', { device: 'acl-1', reason: 'acl_violation' });
  one('session.kick', { device: 'rev-1', reason: 'device_revoked' });
  one('session.kick', { device: 'tok-1', reason: 'token_revoked' });
  t.match(one('revocation.applied', { kind: 'device_revoked', device: 'rev-1' }), { sessionClosed: true, msg: 'revocation applied' });
  t.match(one('revocation.applied', { kind: 'token_revoked', jti }), { sessionClosed: true });
  t.match(one('auth.refused', { device: 'exp-1' }), { reason: 'malformed', address: '127.0.0.1', connack: 4 });
  t.match(one('auth.refused', { device: 'rev-1' }), { reason: 'device_revoked', address: '127.0.0.1', connack: 5 });
  t.match(records.find((r) => r.event === 'session.open' && r.device === 'exp-1'), { level: 20, transport: 'tcp', address: '127.0.0.1' }, 'a successful connect is at debug');

  // What aedes re-emits for a refusal or kick already logged: never a second line.
  const echoed = /^(malformed|device_revoked|publish refused|token expired|device revoked|session ended)/;
  const dupes = records.filter((r) => (r.event === 'client.error' || r.event === 'connection.error') && echoed.test(String(r.err)));
  t.same(dupes, [], 'no client.error line repeats a logged refusal or kick');
  t.ok(records.every((r) => ISO.test(String(r.time))), 'ISO 8601 timestamps');

  // Shutdown closes the remaining session with one line, not one per session.
  t.equal(await serve.stop(), 0);
  const end = serve.records();
  t.match(end.find((r) => r.event === 'broker.stopping'), { level: 30, sessions: 1 }, 'one broker.stopping line with the count');
  t.notOk(end.some((r) => r.event === 'session.kick' && r.reason === 'shutdown' && r.level === 30), 'no info line per session at shutdown');
});

t.test('--log-format pretty: one readable line per event, ISO 8601 time; json and auto', async (t) => {
  const serve = await startServe(['--log-format', 'pretty']);
  t.teardown(() => serve.stop());
  t.equal((await connect(`mqtt://127.0.0.1:${serve.mqttPort}`, { clientId: 'p-1', username: 'p-1', password: 'garbage' })).code, 4);
  await until(() => serve.lines().some((l) => l.includes('connect refused')));
  t.equal(await serve.stop(), 0);
  const line = serve.lines().find((l) => l.includes('connect refused'));
  t.match(line, /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] INFO: connect refused \{"event":"auth\.refused","device":"p-1","reason":"malformed","address":"127\.0\.0\.1","connack":4\}$/, `pretty line: ${line}`);
  t.ok(serve.lines().every((l) => /^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] (INFO|WARN|ERROR|DEBUG):/.test(l)), 'every stdout line is a pretty log line');

  t.equal(resolveLogFormat('auto', { isTTY: true }), 'pretty', 'auto: pretty on a terminal');
  t.equal(resolveLogFormat('auto', { isTTY: false }), 'json', 'auto: JSON into a pipe or file');
  t.equal(resolveLogFormat('json', { isTTY: true }), 'json', 'an explicit format wins');
  const bad = await runCli(['serve', '--log-format', 'yaml', '--db', '/nonexistent/x.db']);
  t.equal(bad.code, 2, '--log-format yaml: exit 2');
  t.match(bad.stderr, /^credbroker: invalid (logFormat|--log-format) "yaml".*"pretty", "json" or "auto"\n$/, 'one line naming the choices');
});
