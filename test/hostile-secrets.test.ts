// No secret ever leaks (SPEC "Connecting": the reason goes to the audit log and
// metrics, never the token; "Operations": JSON logs never contain a token or
// secret; "Identifiers and tokens": only hashes are stored). Self-contained: it
// makes its own traffic, then scans logs, audit rows, CLI output and the file.
import t from 'tap';
import { readFileSync, existsSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { revokeDevices, revokeToken } from '../operations/index.js';
import type { DeviceId, Jti } from '../registry/index.js';
import { brokerLogLines, connect, connectDevice, startTestBroker } from './helpers/broker.js';
import { breakChecksum, signWith } from './helpers/hostile-jwt.js';
import { hasCli, runCli, runNode, sleep, type ChildResult } from './helpers/hostile-util.js';
import { startServe } from './helpers/serve-process.js';

interface Answer { topic: string; body: Record<string, string> }

/** Subscribes to the device's token topics and renews once. */
async function renew(client: MqttClient, id: string): Promise<Answer> {
  await client.subscribeAsync(`$devices/${id}/token/+`, { qos: 1 });
  const got = new Promise<Answer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no renewal answer')), 10_000);
    client.once('message', (topic, payload) => { clearTimeout(timer); resolve({ topic, body: JSON.parse(payload.toString()) as Record<string, string> }); });
  });
  client.publish(`$devices/${id}/token/renew`, JSON.stringify({ requestId: `req-${id}` }), { qos: 1 });
  return got;
}

t.test('no token, refresh credential or private key in logs, audit, CLI output or the registry file', async (t) => {
  // No grace for a rotated-out refresh credential (refreshGraceMs): the replay below must count as theft at once.
  // Every refusal gets its own log line (no rate limit on them), so that each is scanned.
  const tb = await startTestBroker({ refreshGraceMs: 1, refusalLogBurst: 1000 });
  t.teardown(() => tb.close());
  const tokens: string[] = [];
  const refresh: string[] = [];
  const creds = await tb.provision(['s1', 's2', 's3', 's4', 's5']);
  for (const c of creds) { tokens.push(c.accessToken); refresh.push(c.refreshCredential); }
  const [s1, s2, , s4, s5] = creds as [typeof creds[0], typeof creds[0], typeof creds[0], typeof creds[0], typeof creds[0]];

  // Connect and renew with a token.
  const c1 = await connectDevice(tb.url, s1);
  t.equal(c1.code, 0, 's1 connects');
  const a1 = await renew(c1.client!, 's1');
  t.match(a1.topic, /\/accepted$/, 's1 renewed');
  tokens.push(a1.body.accessToken!);
  c1.client!.end(true);

  // Refresh-credential session: renew twice (rotating), then replay the first (theft).
  const r1 = await connect(tb.url, { clientId: 's2', username: 's2', password: s2.refreshCredential });
  t.equal(r1.code, 0, 's2 connects with its refresh credential');
  const a2 = await renew(r1.client!, 's2');
  t.ok(a2.body.refreshCredential, 'refresh credential rotated');
  tokens.push(a2.body.accessToken!);
  refresh.push(a2.body.refreshCredential!);
  r1.client!.end(true);
  const r2 = await connect(tb.url, { clientId: 's2', username: 's2', password: a2.body.refreshCredential! });
  t.equal(r2.code, 0, 's2 connects with the rotated credential');
  const a3 = await renew(r2.client!, 's2');
  tokens.push(a3.body.accessToken!);
  refresh.push(a3.body.refreshCredential!);
  r2.client!.end(true);
  const replay = await connect(tb.url, { clientId: 's2', username: 's2', password: s2.refreshCredential });
  t.not(replay.code, 0, 'replayed (superseded) refresh credential refused');
  await sleep(300);
  t.equal((await tb.issuer.reg.devices.get('s2'))?.status, 'revoked', 'the replay revoked s2');

  // Bad tokens, including real ones presented wrongly.
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const forged = signWith(attacker.privateKey, { alg: 'ES256', kid: tb.issuer.keyring.signer!.kid }, { sub: 's3' });
  tokens.push(forged);
  const refusals: [string, string, string][] = [
    ['s3', 's3', s1.accessToken], // a real token of another device
    ['s3', 's3', forged],
    ['s3', 's3', `${s1.accessToken}x`],
    ['s1', 's1', breakChecksum(s1.refreshCredential)],
    ['s3', 's3', s1.refreshCredential],
    ['nobody', 'nobody', s1.accessToken],
    ['s1', 's3', s1.accessToken], // client id of another device
    [s1.refreshCredential, 's1', s1.accessToken], // a credential typed into the user name field
    [s1.accessToken, 's1', s1.refreshCredential],
  ];
  for (const [username, clientId, password] of refusals) {
    const r = await connect(tb.url, { username, clientId, password });
    t.not(r.code, 0, `refused: ${username}/${clientId}`);
  }

  // Revocations: the CLI (or the library from a child process when the CLI is not built), and in process.
  const cliRuns: ChildResult[] = [];
  if (hasCli()) {
    cliRuns.push(await runCli(['revoke', 's4', '--reason', 'secrets test', '--db', tb.db]));
    for (const args of [['audit', '--json', '--limit', '1000'], ['devices', '--json'], ['show', 's1', '--json'], ['keys', 'list'], ['keys', 'jwks']]) {
      cliRuns.push(await runCli([...args, '--db', tb.db]));
    }
  } else {
    cliRuns.push(await runNode(`import { openRegistry } from './dist/registry/index.js'; import { revokeDevices } from './dist/operations/index.js';
      const reg = await openRegistry(process.argv[1]); console.log(JSON.stringify(await revokeDevices(reg, ['s4'], 'secrets test'))); await reg.close();`, { args: [tb.db] }));
  }
  t.ok(cliRuns.every((r) => r.code === 0), `CLI runs exited 0 ${cliRuns.map((r) => r.stderr).join(' ')}`);
  await revokeDevices(tb.issuer.reg, ['s3' as DeviceId], 'secrets test');
  const s5jti = (await tb.issuer.reg.tokens.liveFor('s5' as DeviceId, Date.now()))[0]!.jti;
  await revokeToken(tb.issuer.reg, s5jti as Jti);
  await sleep(300);
  t.equal((await connectDevice(tb.url, s4)).code, 5, 'revoked s4 refused');
  t.equal((await connectDevice(tb.url, s5)).code, 5, 'revoked jti of s5 refused');
  await sleep(400); // audit buffer flush

  // What must never appear.
  const secrets: [string, string][] = [];
  for (const tok of tokens) {
    secrets.push(['token', tok]);
    secrets.push(['token signature', tok.split('.')[2]!]);
  }
  for (const r of refresh) {
    secrets.push(['refresh credential', r]);
    secrets.push(['refresh credential body', r.slice(5, 48)]);
  }
  const dValues = (await tb.issuer.reg.keys.all()).filter((k) => k.privateJwk !== null)
    .map((k) => (JSON.parse(k.privateJwk!) as { d: string }).d);
  t.ok(dValues.length >= 1, 'found the private key d value(s) to look for');
  const keySecrets: [string, string][] = dValues.map((d) => ['private key d', d]);
  t.ok(tokens.length >= 9 && refresh.length >= 7, `${tokens.length} tokens and ${refresh.length} refresh credentials recorded`);

  // Refused logins past a few per address are counted into a summary row (written at the window's end): write it now, to scan it too.
  tb.broker.context.tally.flush();
  await tb.broker.context.audit.flush();
  const auditRows = (await tb.issuer.reg.audit.query({ limit: null })).map((r) => JSON.stringify(r));
  t.ok(auditRows.some((r) => r.includes('auth.refused.summary')), 'the scan covers a summary row');
  const cliLines = cliRuns.flatMap((r) => `${r.stdout}\n${r.stderr}`.split('\n'));
  const haystacks: [string, string[]][] = [['broker log', brokerLogLines], ['audit row', auditRows], ['CLI output', cliLines]];
  t.ok(brokerLogLines.length > 20 && auditRows.length > 10, `scanning ${brokerLogLines.length} log lines, ${auditRows.length} audit rows, ${cliLines.length} CLI output lines`);
  for (const [where, lines] of haystacks) {
    const leaks: string[] = [];
    for (const [what, secret] of [...secrets, ...keySecrets]) if (lines.some((l) => l.includes(secret))) leaks.push(what);
    t.same(leaks, [], `no secret in any ${where}`);
  }

  // The registry file (and its WAL) holds hashes only: no raw token or refresh credential.
  const fileLeaks = () => {
    const files = [tb.db, `${tb.db}-wal`].filter(existsSync).map((f) => readFileSync(f).toString('latin1'));
    return secrets.filter(([, s]) => files.some((f) => f.includes(s))).map(([what]) => what);
  };
  t.same(fileLeaks(), [], 'registry file and WAL: no raw token or refresh credential while open');
  await tb.issuer.reg.space.scrub();
  t.same(fileLeaks(), [], 'registry file: none after a checkpoint either');
});

t.test('the real serve process, pretty and at debug: no secret in its output', { skip: !hasCli() && 'CLI not built' }, async (t) => {
  const serve = await startServe(['--log-format', 'pretty', '--log-level', 'debug']);
  t.teardown(() => serve.stop());
  const url = `mqtt://127.0.0.1:${serve.mqttPort}`;
  const [a, b] = await serve.provision(['p1', 'p2']);
  const secrets: [string, string][] = [['token', a!.accessToken], ['token', b!.accessToken], ['refresh credential', a!.refreshCredential], ['refresh credential', b!.refreshCredential]];
  const ok = await connectDevice(url, a!);
  t.equal(ok.code, 0, 'p1 connects');
  const renewed = await renew(ok.client!, 'p1');
  secrets.push(['renewed token', renewed.body.accessToken!]);
  ok.client!.publish('devices/p2/telemetry', 'not mine'); // an ACL kick
  const viaRefresh = await connect(url, { clientId: 'p2', username: 'p2', password: b!.refreshCredential });
  t.equal(viaRefresh.code, 0, 'p2 connects with its refresh credential');
  const rotated = await renew(viaRefresh.client!, 'p2');
  secrets.push(['rotated refresh credential', rotated.body.refreshCredential!], ['renewed token', rotated.body.accessToken!]);
  viaRefresh.client!.end(true);
  for (const [username, password] of [[b!.refreshCredential, 'x'], ['p1', `${a!.accessToken}x`], [a!.accessToken, a!.accessToken], ['p2', breakChecksum(b!.refreshCredential)]] as const) {
    t.not((await connect(url, { clientId: username === 'p1' ? 'p1' : 'p2', username, password })).code, 0, 'refused');
  }
  await sleep(300);
  t.equal(await serve.stop(), 0, 'serve stopped');
  const output = `${serve.lines().join('\n')}\n${serve.stderr()}`;
  t.ok(output.includes('connect refused') && output.includes('session closed by broker'), `scanned ${serve.lines().length} pretty log lines, with refusals and kicks`);
  const leaks = secrets.filter(([, s]) => output.includes(s) || output.includes(s.split('.')[2] ?? s.slice(5, 48))).map(([what]) => what);
  t.same(leaks, [], 'no token or refresh credential in the pretty log');
});
