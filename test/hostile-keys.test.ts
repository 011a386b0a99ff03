// The signing-key life cycle under attack (issue 10, items 1, 13, 15, 16): a retired
// key dies at its time in a running broker, tokens that no honest issuer could have
// minted are refused whatever their signature, `keys rotate --now` kills a
// compromised key within a second, the wiped private key leaves the file's bytes,
// revocations are fsynced, and a token has exactly one spelling.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, type KeyObject } from 'node:crypto';
import { revokeDevices } from '../operations/index.js';
import { openIssuer, writeCredentialsFile } from '../provisioning/index.js';
import type { DeviceId } from '../registry/index.js';
import { SqliteStores } from '../registry/sqlite/stores.js';
import { sqliteOf } from './helpers/sqlite.js';
import { rotateKeys } from '../tokens/index.js';
import { DeviceClient } from '../device/index.js';
import { closed, connectDevice, startTestBroker, subscribeGranted, type TestBroker } from './helpers/broker.js';
import { signWith } from './helpers/hostile-jwt.js';
import { until } from './helpers/wait.js';
import { authCount, hasCli, runCli, runProcess, sleep } from './helpers/hostile-util.js';

const OVERRIDES = { authFailBurst: 10_000, authFailPerSec: 1000, deviceConnectBurst: 10_000, deviceConnectPerSec: 1000 };

/** Hand-signed claims for `sub`, valid except for what `over` changes. */
function forge(tb: TestBroker, priv: KeyObject, kid: string, sub: string, over: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const { settings } = tb.issuer;
  return signWith(priv, { alg: 'ES256', kid, typ: 'JWT' }, {
    iss: settings.issuer, aud: settings.audience, sub, iat: now, exp: now + 3600,
    jti: randomBytes(16).toString('base64url'), acl: { pub: ['#'], sub: ['#'] }, ...over,
  });
}

/** `p`, or null after `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<null>((r) => { timer = setTimeout(() => r(null), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

async function kicks(tb: TestBroker, reason: string): Promise<number> {
  const m = await tb.broker.context.metrics.kicks.get();
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

t.test('a retired key dies at its verify-until in a running broker, no restart', async (t) => {
  const tb = await startTestBroker(OVERRIDES);
  t.teardown(() => tb.close());
  await tb.provision(['d1', 'd2']);
  const old = tb.issuer.keyring.signer!;
  const oldTok = forge(tb, old.keyObject!, old.kid, 'd1');
  const otherTok = forge(tb, old.keyObject!, old.kid, 'd2'); // d1's client id would take over the live session
  const live = await connectDevice(tb.url, { deviceId: 'd1', accessToken: oldTok });
  t.equal(live.code, 0, 'control: a token of the active key connects');

  await rotateKeys(tb.issuer.reg);
  // As if the last token it signed expired 1.5 s from now: the broker learns the new verify-until from the feed.
  const verifyUntil = Date.now() + 1500;
  await tb.issuer.reg.transaction(async (tx) => {
    await tx.keys.retire(old.kid, verifyUntil, Date.now());
    await tx.changes.append('keys_rotated', null);
  });
  // Until the broker has reloaded, the old key verifies anyway: wait for the new verify-until, or the check below proves nothing.
  await until('the broker to learn the retired key\'s verify-until', () => tb.broker.context.issuer.keyring.verifyKeys.get(old.kid)?.verifyUntil === verifyUntil, 1_000);
  const before = await connectDevice(tb.url, { deviceId: 'd2', accessToken: otherTok });
  t.equal(before.code, 0, 'before verify-until, the retired key still verifies');
  before.client?.end(true);

  const gone = await within(closed(live.client!), 10_000);
  t.ok(gone !== null && gone >= verifyUntil, 'the live session of the retired key is closed at verify-until');
  t.ok(gone !== null && gone - verifyUntil < 1000, `within a second of it (${gone === null ? 'never' : gone - verifyUntil} ms)`);
  t.equal(await kicks(tb, 'key_retired'), 1, 'counted as a key_retired kick');
  const after = await connectDevice(tb.url, { deviceId: 'd1', accessToken: oldTok });
  t.equal(after.code, 4, 'after verify-until: CONNACK 4');
  t.ok(await authCount(tb.broker, { reason: 'unknown_kid' }) >= 1, 'refused as an unknown key');
  t.notOk(tb.broker.context.issuer.keyring.verifyKeys.has(old.kid), 'the keyring dropped the key');
});

t.test('tokens no honest issuer mints are refused whatever the signature', async (t) => {
  const tb = await startTestBroker(OVERRIDES);
  t.teardown(() => tb.close());
  await tb.provision(['d1']);
  const old = tb.issuer.keyring.signer!;
  const now = Math.floor(Date.now() / 1000);
  const cap = tb.issuer.settings.maxTokenTtlMs / 1000;
  // Retired a minute ago: its private half was wiped then, so a later iat means a stolen key.
  const retiredAt = Date.now() - 60_000;
  await rotateKeys(tb.issuer.reg, { now: retiredAt });
  await sleep(400);
  const fresh = await openIssuer(tb.db);
  t.teardown(() => fresh.reg.close());
  const cur = fresh.keyring.signer!;
  const retiredSec = Math.floor(retiredAt / 1000);

  const cases: [string, string, number][] = [
    ['old key, iat before its retirement (control)', forge(tb, old.keyObject!, old.kid, 'd1', { iat: retiredSec - 30 }), 0],
    ['old key, iat after its retirement', forge(tb, old.keyObject!, old.kid, 'd1'), 4],
    ['old key, iat after retirement, 30-day exp, ACL #', forge(tb, old.keyObject!, old.kid, 'd1', { exp: now + 30 * 86_400 }), 4],
    ['active key, lifetime of exactly the cap (control)', forge(tb, cur.keyObject!, cur.kid, 'd1', { iat: now, exp: now + cap }), 0],
    ['active key, lifetime of the cap + 1 s', forge(tb, cur.keyObject!, cur.kid, 'd1', { iat: now, exp: now + cap + 1 }), 4],
    ['active key, 30-day lifetime, ACL #', forge(tb, cur.keyObject!, cur.kid, 'd1', { exp: now + 30 * 86_400 }), 4],
    ['active key, iat an hour ahead (lifetime within the cap)', forge(tb, cur.keyObject!, cur.kid, 'd1', { iat: now + 3600, exp: now + 7200 }), 4],
  ];
  for (const [name, token, code] of cases) {
    const r = await connectDevice(tb.url, { deviceId: 'd1', accessToken: token });
    t.equal(r.code, code, `${name}: CONNACK ${code}`);
    if (r.client && code === 0) t.equal(await subscribeGranted(r.client, 'devices/d1/commands/x'), 1, `${name}: a working session`);
    r.client?.end(true);
  }
  t.equal(await authCount(tb.broker, { reason: 'bad_claim' }), 5, 'each refused as a bad claim');
});

t.test('keys rotate --now: sessions of the old key closed within 1 s, its tokens refused, devices back through the refresh credential', { skip: !hasCli() && 'dist/ not built' }, async (t) => {
  const tb = await startTestBroker(OVERRIDES);
  t.teardown(() => tb.close());
  const [dev, raw] = await tb.provision(['dev-k', 'raw-k']);
  const oldKid = tb.issuer.keyring.signer!.kid;
  const path = writeCredentialsFile(tb.dir, dev!);
  const client = new DeviceClient({ credentialsPath: path, backoff: { initialMs: 50, maxMs: 1000 } });
  t.teardown(() => client.stop());
  const vias: string[] = [];
  client.on('connected', (info) => vias.push(info.via));
  await client.start();
  t.same(vias, ['token'], 'the device is connected with its provisioned token');
  const rawConn = await connectDevice(tb.url, raw!);
  t.equal(rawConn.code, 0, 'a second session of the old key');
  const rawClosed = closed(rawConn.client!);
  const devBack = new Promise<void>((resolve) => client.on('connected', (info) => info.via === 'refresh' && resolve()));

  const r = await runCli(['keys', 'rotate', '--now', '--json', '--db', tb.db]);
  const exitedAt = Date.now();
  t.equal(r.code, 0, `keys rotate --now: ${r.stderr}`);
  const rotation = JSON.parse(r.stdout) as { activeKid: string; retired: { kid: string }[] };
  t.same(rotation.retired.map((k) => k.kid), [oldKid], 'the old key is retired');
  t.not(rotation.activeKid, oldKid);

  const closedAt = await within(rawClosed, 5000);
  t.ok(closedAt !== null && closedAt - exitedAt < 1000, `the old key's session closed within 1 s (${closedAt === null ? 'never' : closedAt - exitedAt} ms after the CLI exited)`);
  const again = await connectDevice(tb.url, raw!);
  t.equal(again.code, 4, 'the old key\'s token is refused: CONNACK 4');

  t.not(await within(devBack.then(() => true), 20_000), null, 'the device reconnected');
  t.same(vias.slice(0, 2), ['token', 'refresh'], 'the device came back through its refresh credential');
  const renewed = client.credentials().accessToken;
  const header = JSON.parse(Buffer.from(renewed.split('.')[0]!, 'base64url').toString()) as { kid: string };
  t.equal(header.kid, rotation.activeKid, 'its new token is signed by the new key');
  t.equal(await client.subscribe('devices/dev-k/commands/#', { qos: 1 }), 1, 'with a full session again');
  t.ok(await kicks(tb, 'key_retired') >= 2, 'both sessions closed as key_retired');
  const list = JSON.parse((await runCli(['keys', 'list', '--json', '--db', tb.db])).stdout) as { kid: string; status: string }[];
  t.equal(list.find((k) => k.kid === oldKid)?.status, 'expired', 'keys list shows the old key as verifying nothing');
});

t.test('after keys rotate --now, devices behind one throttled address still come back (a dead token is not tried again)', async (t) => {
  // One address, a failed-login budget of 1 refilled every 2 s: a NAT'd fleet after a key compromise.
  const tb = await startTestBroker({ authFailBurst: 1, authFailPerSec: 0.5, deviceConnectBurst: 10_000, deviceConnectPerSec: 1000 });
  t.teardown(() => tb.close());
  const creds = await tb.provision(['nat-1', 'nat-2']);
  const clients = creds.map((c) => new DeviceClient({ credentialsPath: writeCredentialsFile(tb.dir, c), backoff: { initialMs: 50, maxMs: 1000 } }));
  t.teardown(async () => { for (const c of clients) await c.stop(); });
  for (const c of clients) await c.start();
  const oldKid = tb.issuer.keyring.signer!.kid;
  const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
  const refreshed = clients.map(() => false);
  clients.forEach((c, i) => c.on('renewed', (ev) => { if (ev.rotatedRefresh) refreshed[i] = true; }));
  await rotateKeys(tb.issuer.reg, { immediate: true });
  const backAt = Date.now() + 60_000;
  const back = () => clients.every((c) => c.connected && kidOf(c.credentials().accessToken) !== oldKid);
  while (!back() && Date.now() < backAt) await sleep(100);
  t.ok(back(), 'both devices are connected again with tokens of the new key');
  t.same(refreshed, [true, true], 'both came back through their refresh credentials');
  t.ok(await authCount(tb.broker, { reason: 'unknown_kid' }) <= 2, 'each dead token was presented at most once');
  for (const [i, c] of clients.entries()) t.equal(await c.subscribe(`devices/nat-${i + 1}/commands/#`, { qos: 1 }), 1, `nat-${i + 1} has a full session`);
});

/**
 * Which of `needles` occur in any byte of the registry's files (main, WAL, shared memory).
 * Read by a child process: closing a descriptor of the file here would drop this
 * process's POSIX locks, the live connections' included, and let the CLI delete the WAL under them.
 */
function inRegistryBytes(db: string, needles: readonly string[]): boolean[] {
  const script = `const fs = require('fs'), path = require('path'); const [dir, ...n] = process.argv.slice(1);
    const b = Buffer.concat(fs.readdirSync(dir).filter((f) => f.startsWith('registry.db')).map((f) => fs.readFileSync(path.join(dir, f))));
    process.stdout.write(JSON.stringify(n.map((x) => b.includes(x))));`;
  const r = spawnSync(process.execPath, ['-e', script, join(db, '..'), ...needles], { encoding: 'utf8' });
  return JSON.parse(r.stdout) as boolean[];
}

function activePrivateD(db: string): string {
  const reg = SqliteStores.open(db);
  try {
    const k = reg.keys.all().find((r) => r.status === 'active')!;
    return (JSON.parse(k.privateJwk!) as { d: string }).d;
  } finally {
    reg.close();
  }
}

t.test('a retired private key is gone from the registry file and its WAL', { skip: !hasCli() && 'dist/ not built' }, async (t) => {
  const tb = await startTestBroker(OVERRIDES); // a running broker holds the file (and its WAL) open
  t.teardown(() => tb.close());
  await tb.provision(['d1', 'd2']);
  // Several rotations: where a wiped key's bytes would linger (free space in the page, old WAL frames) depends on the page's layout.
  const retired: string[] = [];
  for (const args of [...Array.from({ length: 4 }, () => ['keys', 'rotate']), ['keys', 'rotate', '--now']]) {
    const d = activePrivateD(tb.db);
    t.ok(inRegistryBytes(tb.db, [d])[0], `control: the active private key is in the file before ${args.join(' ')}`);
    const r = await runCli([...args, '--db', tb.db]);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    t.notMatch(r.stderr, /warning/, 'the WAL was truncated');
    retired.push(d);
    t.same(inRegistryBytes(tb.db, retired), retired.map(() => false), `after ${args.join(' ')} #${retired.length}, no retired key's d value is in any byte of the registry files`);
  }
});

const canTrace = (await runProcess('strace', ['-f', '-e', 'trace=none', 'true'], {})).code === 0;

t.test('a revocation is fsynced before the CLI reports it done', { skip: (!hasCli() && 'dist/ not built') || (!canTrace && 'strace cannot trace here') }, async (t) => {
  const tb = await startTestBroker(OVERRIDES); // another connection: closing the CLI's does not checkpoint
  t.teardown(() => tb.close());
  await tb.provision(['d1', 'd2']);
  const trace = join(tb.dir, 'strace.out');
  const r = await runProcess('strace', ['-f', '-y', '-e', 'trace=fsync,fdatasync', '-o', trace, process.execPath, 'dist/cli/main.js', 'revoke', 'd1', '--db', tb.db], {});
  t.equal(r.code, 0, `revoke under strace: ${r.stderr.slice(-500)}`);
  const syncs = readFileSync(trace, 'utf8').split('\n').filter((l) => /f(data)?sync\(\d+<[^>]*registry\.db-wal>\) = 0/.test(l));
  t.ok(syncs.length >= 1, `the WAL was fsynced by the revoking process (${syncs.length} syncs)`);

  // The library path the broker's theft response uses commits the same way.
  await revokeDevices(tb.issuer.reg, ['d2' as DeviceId], 'test');
  t.equal(sqliteOf(tb.issuer.reg).db.pragma('synchronous', { simple: true }), 1, 'and goes back to NORMAL for everyday commits');
});
