import t from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { checkRefreshCredential } from '../operations/index.js';
import { openIssuer, readCredentialsFile } from '../provisioning/index.js';
import type { DeviceId } from '../registry/index.js';
import { runCli } from './helpers/cli.js';
import { registryTargetIn } from './helpers/backend.js';

t.test('restore --out gives a revoked device a complete new credentials set', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir, 'r.db');
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const first = await runCli(['provision', 'pump-1', '--profile', 'sensor', '--out', join(dir, 'creds'), '--db', db]);
  t.equal(first.code, 0, first.stderr);
  const old = readCredentialsFile(join(dir, 'creds', 'pump-1.json'));
  t.equal((await runCli(['revoke', 'pump-1', '--reason', 'test', '--db', db])).code, 0);

  const restored = await runCli(['restore', 'pump-1', '--out', join(dir, 'new'), '--db', db]);
  t.equal(restored.code, 0, restored.stderr);
  t.match(restored.stdout, /restored pump-1/);
  t.notMatch(restored.stdout + restored.stderr, /eyJ|cbrt_/, 'no secret printed without --json');
  const file = join(dir, 'new', 'pump-1.json');
  t.equal(statSync(file).mode & 0o777, 0o600, 'credentials file is 0600');
  const fresh = readCredentialsFile(file);
  t.not(fresh.refreshCredential, old.refreshCredential);

  const issuer = await openIssuer(db);
  t.teardown(() => issuer.reg.close());
  t.equal((await checkRefreshCredential(issuer, fresh.refreshCredential, 'pump-1' as DeviceId)).state, 'current', 'the new refresh credential works');
  await t.rejects(checkRefreshCredential(issuer, old.refreshCredential, 'pump-1' as DeviceId), { code: 'ERR_TOKEN_REVOKED' }, 'the old one stays dead');
  t.ok((await issuer.reg.audit.query({ deviceId: 'pump-1' })).some((e) => e.action === 'device.reissue'), 'audited');
});
