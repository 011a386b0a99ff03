import t, { type Test } from 'tap';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jwtPayload, lines, runCli } from './helpers/cli.js';
import { registryTargetIn } from './helpers/backend.js';

const FIELDS = ['accessToken', 'accessTokenExpiresAt', 'brokerUrl', 'deviceId', 'refreshCredential', 'refreshCredentialExpiresAt'];
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface Creds { deviceId: string; brokerUrl: string; accessToken: string; accessTokenExpiresAt: string; refreshCredential: string; refreshCredentialExpiresAt: string }

function checkCreds(t: Test, c: Creds, id: string, brokerUrl = 'mqtt://localhost:1883'): void {
  t.same(Object.keys(c).sort(), FIELDS, `${id}: exactly the spec's fields`);
  t.equal(c.deviceId, id);
  t.equal(c.brokerUrl, brokerUrl);
  t.match(c.accessToken, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'access token is a JWS');
  t.match(c.refreshCredential, /^cbrt_[A-Za-z0-9_-]{49}$/, 'refresh credential has its prefix');
  t.match(c.accessTokenExpiresAt, ISO);
  t.match(c.refreshCredentialExpiresAt, ISO);
  const claims = jwtPayload(c.accessToken);
  t.equal(claims.sub, id);
  t.equal(new Date((claims.exp as number) * 1000).toISOString(), c.accessTokenExpiresAt, 'accessTokenExpiresAt = exp');
}

const readCreds = (dir: string, id: string) => JSON.parse(readFileSync(join(dir, `${id}.json`), 'utf8')) as Creds;

t.test('provisioning end to end', async (t) => {
  const dir = t.testdir({
    'batch.csv': 'id,profile\ncsv-1,\ncsv-2,observer\n\ncsv-3,sensor\n',
    'batch.jsonl': '{"id":"jl-1"}\n{"id":"jl-2","profile":"observer"}\n\n',
  });
  const db = await registryTargetIn(dir);
  const out = join(dir, 'creds');
  const cli = (...args: string[]) => runCli([...args, '--db', db]);

  t.test('init', async (t) => {
    const r = await cli('init');
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /created registry .* \(alg ES256, issuer urn:credbroker/);
    const again = await cli('init');
    t.equal(again.code, 0);
    t.match(again.stdout, /already initialised.*nothing changed/);
  });

  t.test('single devices', async (t) => {
    const r = await cli('provision', 'pump-1', 'pump-2', '--profile', 'sensor', '--out', out);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^DEVICE\s+TOKEN EXPIRES\s+CREDENTIAL EXPIRES\s+FILE$/m, 'a table');
    t.match(r.stdout, /provisioned 2, skipped \(already provisioned\) 0, invalid 0 in [\d.]+ s \([\d,]+ devices\/s\)/);
    for (const id of ['pump-1', 'pump-2']) {
      t.equal(statSync(join(out, `${id}.json`)).mode & 0o777, 0o600, `${id}.json has mode 0600`);
      checkCreds(t, readCreds(out, id), id);
    }
    t.equal(statSync(out).mode & 0o777, 0o700, 'the folder is 0700');
  });

  t.test('options: --ttl, --credential-ttl, --broker-url', async (t) => {
    const before = Date.now();
    const r = await cli('provision', 'valve-1', '--profile', 'sensor', '--out', out, '--ttl', '15m', '--credential-ttl', '30d', '--broker-url', 'mqtts://broker.example.com:8883');
    t.equal(r.code, 0, r.stderr);
    const c = readCreds(out, 'valve-1');
    checkCreds(t, c, 'valve-1', 'mqtts://broker.example.com:8883');
    const ttl = Date.parse(c.accessTokenExpiresAt) - before;
    t.ok(ttl > 14 * 60_000 && ttl < 16 * 60_000, 'access token lives 15m');
    const cred = Date.parse(c.refreshCredentialExpiresAt) - before;
    t.ok(cred > 29.9 * 86_400_000 && cred < 30.1 * 86_400_000, 'refresh credential lives 30d');
    const env = await runCli(['provision', 'valve-2', '--profile', 'sensor', '--json', '--db', db], { env: { CREDBROKER_BROKER_URL: 'wss://edge.example.com/mqtt' } });
    t.equal((JSON.parse(env.stdout) as Creds[])[0]?.brokerUrl, 'wss://edge.example.com/mqtt', 'CREDBROKER_BROKER_URL is the default');
  });

  t.test('batch: CSV, JSONL and stdin', async (t) => {
    const csv = await cli('provision', '--batch', join(dir, 'batch.csv'), '--profile', 'sensor', '--out', out);
    t.equal(csv.code, 0, csv.stderr);
    t.match(csv.stdout, /provisioned 3, skipped \(already provisioned\) 0, invalid 0/);
    const jsonl = await cli('provision', '--batch', join(dir, 'batch.jsonl'), '--profile', 'sensor', '--out', out);
    t.equal(jsonl.code, 0, jsonl.stderr);
    t.match(jsonl.stdout, /provisioned 2,/);
    const stdinCsv = await runCli(['provision', '--batch', '-', '--profile', 'sensor', '--out', out, '--db', db], { input: 'id\nin-1\nin-2\n' });
    t.equal(stdinCsv.code, 0, stdinCsv.stderr);
    t.match(stdinCsv.stdout, /provisioned 2,/);
    const stdinJsonl = await runCli(['provision', '--batch', '-', '--profile', 'sensor', '--out', out, '--db', db], { input: '{"id":"in-3"}\n' });
    t.equal(stdinJsonl.code, 0, stdinJsonl.stderr);
    t.match(stdinJsonl.stdout, /provisioned 1,/);
    for (const id of ['csv-1', 'csv-2', 'csv-3', 'jl-1', 'jl-2', 'in-1', 'in-2', 'in-3']) checkCreds(t, readCreds(out, id), id);
    const observer = jwtPayload(readCreds(out, 'csv-2').accessToken) as { acl: { pub: string[]; sub: string[] } };
    t.same(observer.acl, { pub: ['devices/+/commands/#'], sub: ['devices/#'] }, 'profile column overrides --profile');
    const sensor = jwtPayload(readCreds(out, 'csv-1').accessToken) as { acl: { pub: string[]; sub: string[] } };
    t.same(sensor.acl, { pub: ['devices/csv-1/telemetry', 'devices/csv-1/events/#'], sub: ['devices/csv-1/commands/#'] }, '{device} substituted');
  });

  t.test('re-running a batch skips devices already provisioned', async (t) => {
    const before = readFileSync(join(out, 'csv-1.json'), 'utf8');
    const r = await cli('provision', '--batch', join(dir, 'batch.csv'), '--profile', 'sensor', '--out', out);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /provisioned 0, skipped \(already provisioned\) 3, invalid 0/);
    t.equal(readFileSync(join(out, 'csv-1.json'), 'utf8'), before, 'credentials file untouched');
    const mixed = await cli('provision', 'csv-1', 'new-1', '--profile', 'sensor', '--json');
    t.equal(mixed.code, 0);
    t.same((JSON.parse(mixed.stdout) as Creds[]).map((c) => c.deviceId), ['new-1'], 'only the new device is issued credentials');
    t.match(mixed.stderr, /already provisioned, skipped: csv-1/);
  });

  t.test('--json prints an array of credentials objects and nothing else', async (t) => {
    const r = await cli('provision', 'j-1', 'j-2', '--profile', 'sensor', '--json');
    t.equal(r.code, 0, r.stderr);
    const arr = JSON.parse(r.stdout) as Creds[];
    t.ok(Array.isArray(arr));
    t.equal(arr.length, 2);
    arr.forEach((c, k) => checkCreds(t, c, `j-${k + 1}`));
    t.match(r.stderr, /provisioned 2,/, 'the summary goes to stderr');
    t.notMatch(r.stderr, /cbrt_[A-Za-z0-9_-]{49}|eyJ[A-Za-z0-9_-]*\.eyJ/, 'no secret on stderr');
  });

  t.test('devices', async (t) => {
    const r = await cli('devices', '--json');
    t.equal(r.code, 0);
    const list = JSON.parse(r.stdout) as { id: string; profile: string; status: string; createdAt: string }[];
    t.equal(list.length, 15);
    t.same(list.find((d) => d.id === 'csv-2'), { ...list.find((d) => d.id === 'csv-2'), profile: 'observer', status: 'active' });
    const [observerOut, table] = await Promise.all([cli('devices', '--profile', 'observer', '--json'), cli('devices')]);
    const observers = JSON.parse(observerOut.stdout) as { id: string }[];
    t.same(observers.map((d) => d.id), ['csv-2', 'jl-2']);
    t.match(table.stdout, /^ID\s+PROFILE\s+STATUS\s+CREATED\s+LAST SEEN/m);
    t.match(table.stdout, /^pump-1\s+sensor\s+active\s/m);
    t.match(table.stdout, /15 device\(s\): 15 active, 0 revoked/);
  });

  t.test('show', async (t) => {
    const jti = jwtPayload(readCreds(out, 'pump-1').accessToken).jti as string;
    const r = await cli('show', 'pump-1', '--json');
    t.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { device: { id: string; status: string }; liveTokens: { jti: string; expiresAt: string }[]; refreshCredentials: { state: string }[]; recentAudit: { action: string }[] };
    t.equal(s.device.id, 'pump-1');
    t.same(s.liveTokens.map((x) => x.jti), [jti], 'the live token is the one in the credentials file');
    t.same(s.refreshCredentials.map((x) => x.state), ['current']);
    t.same(s.recentAudit.map((e) => e.action), ['device.provision']);
    t.notMatch(r.stdout, /cbrt_[A-Za-z0-9_-]{49}|eyJ[A-Za-z0-9_-]*\.eyJ/, 'no secret in show');
    const text = await cli('show', 'pump-1');
    t.match(text.stdout, /^status:\s+active$/m);
    t.match(text.stdout, new RegExp(`live tokens \\(1\\):\\nJTI\\s+ISSUED\\s+EXPIRES\\s+KID\\n${jti}\\s`));
    t.match(text.stdout, /recent audit events \(1\):/);
    const missing = await cli('show', 'nope');
    t.equal(missing.code, 3);
  });

  t.test('token', async (t) => {
    const r = await cli('token', 'pump-1');
    t.equal(r.code, 0, r.stderr);
    t.equal(lines(r.stdout).length, 1, 'only the token on stdout');
    const claims = jwtPayload(r.stdout.trim());
    t.equal(claims.sub, 'pump-1');
    t.match(r.stderr, new RegExp(`minted access token for pump-1: jti ${claims.jti as string}, expires`));
    const j = await cli('token', 'pump-1', '--ttl', '30m', '--json');
    const tok = JSON.parse(j.stdout) as { deviceId: string; jti: string; accessToken: string; accessTokenExpiresAt: string };
    t.equal(tok.deviceId, 'pump-1');
    t.equal(jwtPayload(tok.accessToken).jti, tok.jti);
    t.equal((jwtPayload(tok.accessToken).exp as number) - (jwtPayload(tok.accessToken).iat as number), 1800);
    const s = JSON.parse((await cli('show', 'pump-1', '--json')).stdout) as { liveTokens: unknown[] };
    t.equal(s.liveTokens.length, 3, 'every minted token is recorded');
  });

  t.test('revoke (all or nothing), restore', async (t) => {
    const unknown = await cli('revoke', 'pump-1', 'ghost');
    t.equal(unknown.code, 3);
    t.match(unknown.stderr, /no device "ghost"/);
    let pump1 = JSON.parse((await cli('show', 'pump-1', '--json')).stdout) as { device: { status: string } };
    t.equal(pump1.device.status, 'active', 'nothing revoked when one id is unknown');

    const r = await cli('revoke', 'pump-1', 'pump-2', '--reason', 'stolen from site 4');
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^revoked pump-1 \(3 live tokens revoked\)$/m);
    t.match(r.stdout, /^revoked pump-2 \(1 live token revoked\)$/m);
    t.match(r.stdout, /revoked 2 devices, 4 tokens/);
    const again = await cli('revoke', 'pump-1');
    t.match(again.stdout, /^pump-1 was already revoked$/m);
    const revoked = JSON.parse((await cli('devices', '--status', 'revoked', '--json')).stdout) as { id: string; revokedReason: string }[];
    t.same(revoked.map((d) => [d.id, d.revokedReason]), [['pump-1', 'stolen from site 4'], ['pump-2', 'stolen from site 4']]);
    const refused = await cli('token', 'pump-1');
    t.equal(refused.code, 4, 'no token for a revoked device');
    t.match(refused.stderr, /is revoked \(restore it first/);

    const restored = await cli('restore', 'pump-1');
    t.equal(restored.code, 0);
    t.match(restored.stdout, /restored pump-1/);
    pump1 = JSON.parse((await cli('show', 'pump-1', '--json')).stdout) as { device: { status: string } };
    t.equal(pump1.device.status, 'active');
    const s = JSON.parse((await cli('show', 'pump-1', '--json')).stdout) as { liveTokens: unknown[] };
    t.equal(s.liveTokens.length, 0, 'old tokens stay dead');
    t.equal((await cli('token', 'pump-1')).code, 0, 'a new token can be minted');
    t.match((await cli('restore', 'pump-1')).stdout, /not revoked; nothing changed/);
  });

  t.test('audit', async (t) => {
    const all = JSON.parse((await cli('audit', '--json', '--limit', '1000')).stdout) as { action: string; deviceId: string | null; at: string }[];
    t.equal(all.filter((e) => e.action === 'device.provision').length, 15);
    t.ok(all.some((e) => e.action === 'device.revoke' && e.deviceId === 'pump-2'));
    t.ok(all.some((e) => e.action === 'device.restore' && e.deviceId === 'pump-1'));
    t.ok(all.every((e, k) => k === 0 || e.at <= all[k - 1]!.at), 'newest first');
    const [devOut, sinceOut, futureOut, limitOut, text] = await Promise.all([
      cli('audit', '--device', 'pump-1', '--json'), cli('audit', '--since', '1h', '--json'),
      cli('audit', '--since', '2999-01-01T00:00:00Z', '--json'), cli('audit', '--limit', '2', '--json'), cli('audit', '--device', 'pump-2'),
    ]);
    const dev = JSON.parse(devOut.stdout) as { deviceId: string; action: string }[];
    t.ok(dev.length >= 4 && dev.every((e) => e.deviceId === 'pump-1'));
    t.equal((JSON.parse(sinceOut.stdout) as unknown[]).length, Math.min(all.length, 100));
    t.same(JSON.parse(futureOut.stdout), []);
    t.equal((JSON.parse(limitOut.stdout) as unknown[]).length, 2);
    t.match(text.stdout, /^TIME\s+ACTOR\s+ACTION\s+DEVICE\s+DETAILS$/m);
    t.match(text.stdout, /device\.revoke\s+pump-2\s+reason=stolen from site 4 tokensRevoked=1/);
    t.notMatch(JSON.stringify(all), /cbrt_[A-Za-z0-9_-]{49}|eyJ[A-Za-z0-9_-]*\.eyJ/, 'no secret in the audit log');
  });

  t.test('profiles', async (t) => {
    const set = await cli('profile', 'set', 'valve', '--pub', 'devices/{device}/state', 'devices/{device}/events/#', '--sub', 'devices/{device}/set/#', '--ttl', '30m');
    t.equal(set.code, 0, set.stderr);
    t.match(set.stdout, /created profile valve/);
    const list = await cli('profile', 'list');
    t.match(list.stdout, /^NAME\s+TOKEN TTL\s+DEVICES\s+PUBLISH\s+SUBSCRIBE$/m);
    t.match(list.stdout, /^valve\s+30m\s+0\s+devices\/\{device\}\/state devices\/\{device\}\/events\/#\s+devices\/\{device\}\/set\/#$/m);
    t.match(list.stdout, /^sensor\s+1h\s+\d+\s/m);
    const update = await cli('profile', 'set', 'valve', '--sub', 'devices/{device}/set/+');
    t.match(update.stdout, /updated profile valve: publish devices\/\{device\}\/state devices\/\{device\}\/events\/#; subscribe devices\/\{device\}\/set\/\+; token ttl 30m/);
    const show = JSON.parse((await cli('profile', 'show', 'valve', '--json')).stdout) as { publish: string[]; subscribe: string[]; tokenTtl: string };
    t.same(show, { ...show, publish: ['devices/{device}/state', 'devices/{device}/events/#'], subscribe: ['devices/{device}/set/+'], tokenTtl: '30m' });
    t.match((await cli('profile', 'show', 'valve')).stdout, /^token ttl:\s+30m$/m);
    const p = await cli('provision', 'v-1', '--profile', 'valve', '--json');
    const claims = jwtPayload((JSON.parse(p.stdout) as Creds[])[0]!.accessToken) as { acl: unknown; exp: number; iat: number };
    t.same(claims.acl, { pub: ['devices/v-1/state', 'devices/v-1/events/#'], sub: ['devices/v-1/set/+'] });
    t.equal(claims.exp - claims.iat, 1800, 'the profile sets the token lifetime');
    t.equal((await cli('profile', 'show', 'nope')).code, 3);
  });

  t.test('every command has --help with examples', async (t) => {
    const cmds = [['init'], ['provision'], ['token'], ['revoke'], ['restore'], ['devices'], ['show'], ['profile'], ['profile', 'set'], ['profile', 'list'], ['profile', 'show'], ['keys'], ['keys', 'list'], ['keys', 'rotate'], ['keys', 'jwks'], ['cluster-key'], ['cluster-key', 'list'], ['cluster-key', 'rotate'], ['audit']];
    const results = await Promise.all(cmds.map((cmd) => runCli([...cmd, '--help'])));
    for (const [k, cmd] of cmds.entries()) {
      const r = results[k]!;
      t.equal(r.code, 0, `${cmd.join(' ')} --help`);
      t.match(r.stdout, /Examples:\n {2}credbroker /, `${cmd.join(' ')} --help has examples`);
      if (cmd.length === 1 && !['profile', 'keys', 'cluster-key'].includes(cmd[0]!)) t.match(r.stdout, /--db <file>/);
    }
  });

  t.test('files on disk', async (t) => {
    const files = readdirSync(out).sort();
    t.same(files.filter((f) => !f.endsWith('.json')), [], 'no temp or lock files left behind');
    writeFileSync(join(dir, 'noop'), '');
  });
});
