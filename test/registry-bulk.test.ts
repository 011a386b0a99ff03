import t from 'tap';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openRegistry, type DeviceId } from '../registry/index.js';
import { hashRefreshCredential, parseRefreshCredential } from '../tokens/index.js';
import { derToP1363 } from '../tokens/mint.js';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { freshRegistryTarget, TEST_BACKEND } from './helpers/backend.js';
import { jwtPayload, runCli, spawnCli } from './helpers/cli.js';
import { within } from './helpers/wait.js';

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, k) => `${prefix}-${String(k).padStart(5, '0')}`);

t.test('a batch of 5,000 stores, per device, the rows its credentials file names', async (t) => {
  const db = await freshRegistryTarget(t);
  const batch = ids(5_000, 'bulk');
  const dir = t.testdir({ 'batch.csv': `id\n${batch.join('\n')}\n` });
  const out = join(dir, 'creds');
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const prov = await runCli(['provision', '--batch', join(dir, 'batch.csv'), '--profile', 'sensor', '--out', out, '--db', db], { timeoutMs: 300_000 });
  t.equal(prov.code, 0, prov.stderr);
  t.equal(readdirSync(out).filter((f) => f.endsWith('.json')).length, batch.length, 'a credentials file per device');

  const reg = await openRegistry(db, { readonly: true });
  try {
    const { rows } = await reg.space.stats();
    t.equal(rows.devices, batch.length);
    t.equal(rows.tokens, batch.length);
    t.equal(rows.refresh_credentials, batch.length);
    t.equal((await reg.audit.query({ action: 'device.provision', limit: 10_000 })).length, batch.length, 'one device.provision audit row per device');
    let wrong = 0;
    for (const id of batch.filter((_, k) => k % 25 === 0)) {
      const file = JSON.parse(readFileSync(join(out, `${id}.json`), 'utf8')) as { accessToken: string; refreshCredential: string; refreshCredentialExpiresAt: string };
      const claims = jwtPayload(file.accessToken) as { jti: string; exp: number };
      const device = await reg.devices.get(id);
      const token = await reg.tokens.get(claims.jti);
      const refresh = await reg.refresh.find(hashRefreshCredential(parseRefreshCredential(file.refreshCredential)));
      const ok = device?.status === 'active' && device.profile === 'sensor' && !device.simulation
        && device.credentialExpiresAt === Date.parse(file.refreshCredentialExpiresAt)
        && token?.deviceId === id && token.expiresAt === claims.exp * 1000 && token.revokedAt === null
        && refresh?.deviceId === id && refresh.state === 'current';
      if (!ok) wrong++;
    }
    t.equal(wrong, 0, 'device, token record and refresh credential match the file (every 25th device checked)');
  } finally {
    await reg.close();
  }
});

t.test('registry copy killed half-way leaves no registry behind, and the same command then completes', async (t) => {
  const dir = t.testdir({});
  const source = join(dir, 'source.db');
  // Large enough that the copy is still writing when the kill lands (the kill follows its first progress line).
  const batch = ids(20_000, 'kill');
  writeFileSync(join(dir, 'batch.csv'), `id\n${batch.join('\n')}\n`);
  t.equal((await runCli(['init', '--db', source])).code, 0);
  const prov = await runCli(['provision', '--batch', join(dir, 'batch.csv'), '--profile', 'sensor', '--out', join(dir, 'creds'), '--db', source], { timeoutMs: 300_000 });
  t.equal(prov.code, 0, prov.stderr);
  // Backslash sequences that COPY's text format would read as NULL and a tab, were they not escaped.
  const reason = 'found at C:\\N\\tmp\\ (line 3)';
  const revoke = await runCli(['revoke', 'kill-00007', '--reason', reason, '--db', source]);
  t.equal(revoke.code, 0, revoke.stderr);
  const target = await freshRegistryTarget(t, 'copy.db');

  const child = spawnCli(['registry', 'copy', '--from', source, '--to', target]);
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  let stderr = '';
  await within('the copy\'s first progress line', new Promise<void>((resolve) => {
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (/copied 0 of/.test(stderr)) resolve();
    });
  }), 120_000);
  child.kill('SIGKILL');
  t.equal(await within('the killed copy exits', exited, 30_000), 'SIGKILL');

  if (TEST_BACKEND === 'sqlite') {
    t.notOk(existsSync(target), 'no registry file at --to');
  } else {
    const reg = await openRegistry(target, { readonly: true });
    try {
      t.same(await reg.devices.list({ limit: 1 }), [], 'no device in the target');
      t.same(await reg.keys.all(), [], 'no key in the target');
    } finally {
      await reg.close();
    }
  }

  const again = await runCli(['registry', 'copy', '--from', source, '--to', target, '--json'], { timeoutMs: 300_000 });
  t.equal(again.code, 0, again.stderr);
  const counts = JSON.parse(again.stdout) as { devices: number; revokedDevices: number; tokens: number; refreshCredentials: number };
  t.match(counts, { devices: batch.length, revokedDevices: 1, tokens: batch.length, refreshCredentials: batch.length });
  if (TEST_BACKEND === 'sqlite') t.notOk(existsSync(`${target}.partial`), 'the temporary file is gone');
  const reg = await openRegistry(target, { readonly: true });
  try {
    const d = await reg.devices.get('kill-00007' as DeviceId);
    t.equal(d?.status, 'revoked');
    t.equal(d?.revokedReason, reason, 'free text arrives byte for byte');
  } finally {
    await reg.close();
  }
});

t.test('ES256 signatures re-encoded from DER verify as JWS (r‖s, 64 bytes), short r and s included', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let bad = 0;
  let short = 0;
  for (let i = 0; i < 3_000; i++) {
    const data = Buffer.from(`message ${i}`);
    const der = sign('sha256', data, privateKey);
    if (der[3]! < 32 || der[5 + der[3]!]! < 32) short++;
    const sig = derToP1363(der);
    if (sig.length !== 64 || !verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)) bad++;
  }
  t.equal(bad, 0, 'every signature verifies');
  t.ok(short > 0, `some had an r or s under 32 bytes (${short})`);
});
