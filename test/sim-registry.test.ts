import t, { type Test } from 'tap';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { RevocationState } from '../broker/revocation-state.js';
import { runSimulation, SIM_PROFILE } from '../device-sim/index.js';
import { deleteDevices, revokeDevices } from '../operations/index.js';
import { openRegistry, type DeviceId, type Jti } from '../registry/index.js';
import { connectDevice, startTestBroker } from './helpers/broker.js';
import { lines, runCli, spawnCli, type CliResult } from './helpers/cli.js';
import { rawSql, registryTargetIn } from './helpers/backend.js';
import { everyInvariantPassed } from './helpers/sim-verdicts.js';

/** A refused command: the exit code and exactly one `credbroker: ...` line on stderr. */
function refused(t: Test, r: CliResult, code: number, message: RegExp): void {
  t.equal(r.code, code, `exit ${code} (stderr: ${r.stderr})`);
  t.equal(lines(r.stderr).length, 1, 'one line on stderr');
  t.match(r.stderr.trimEnd(), message);
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function simDevices(db: string): Promise<{ id: string; simulation: boolean }[]> {
  const reg = await openRegistry(db, { readonly: true });
  try {
    return (await reg.devices.list()).filter((d) => d.simulation).map((d) => ({ id: d.id, simulation: d.simulation }));
  } finally {
    await reg.close();
  }
}

/** Moves the recorded expiry of tokens into the past, as if their lifetime had run out. */
function expireTokens(db: string, deviceId?: string): Promise<void> {
  return rawSql(db, `UPDATE tokens SET expires_at = 0${deviceId ? ' WHERE device_id = $1' : ''}`, deviceId ? [deviceId] : []);
}

/** Options of a short, quiet run: a few devices, every cohort small. */
const SHORT = { devices: 8, durationMs: 3_000, tokenTtlMs: 3_000, publishIntervalMs: 1_000, leewayMs: 1_000, offlineFraction: 0, revokeFraction: 0.13, probeFraction: 0, nonRenewingFraction: 0, seed: 5, progress: false } as const;
/** The cohorts SHORT leaves out: their invariants are reported skipped. */
const LEFT_OUT = ['offline', 'probe', 'nonRenewing'] as const;

t.test('sim with no broker listening fails fast: exit 8, one line, nothing provisioned', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const port = await closedPort();
  const started = Date.now();
  const r = await runCli(['sim', '--url', `mqtt://127.0.0.1:${port}`, '--db', db]);
  const took = Date.now() - started;
  refused(t, r, 8, new RegExp(`^credbroker: cannot connect to mqtt://127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
  t.ok(took < 10_000, `gave up within 10 s (${took} ms)`);
  t.same(await simDevices(db), [], 'no device provisioned');
});

t.test('broker and sim on different registries: named before anything is provisioned', async (t) => {
  const tb = await startTestBroker({ logLevel: 'warn' });
  t.teardown(() => tb.close());
  const other = await registryTargetIn(tb.dir, 'other.db');
  t.equal((await runCli(['init', '--db', other])).code, 0);
  const r = await runCli(['sim', '--url', tb.url, '--db', other, '--broker', `http://127.0.0.1:${tb.broker.ports.http}`, '--devices', '5']);
  refused(t, r, 2, /^credbroker: the broker and the sim use different registries: the broker's JWKS \(http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json\) lacks the signing key .* run the sim with --db set to the broker's registry$/);
  t.same(await simDevices(other), [], 'nothing provisioned in the wrong registry');
});

t.test('different registries with the ops port unreadable: the verdict names it', async (t) => {
  const tb = await startTestBroker({ logLevel: 'warn' });
  t.teardown(() => tb.close());
  const other = await registryTargetIn(tb.dir, 'other.db');
  t.equal((await runCli(['init', '--db', other])).code, 0);
  const report = await runSimulation({ ...SHORT, url: tb.url, db: other, opsUrl: `http://127.0.0.1:${await closedPort()}`, durationMs: 60_000 });
  t.equal(report.registry.check.result, 'unchecked');
  const v = report.invariants.find((i) => i.id === 'no-unexpected-error')!;
  t.equal(v.verdict, 'fail');
  t.match(v.detail, /CONNACK 4 on every freshly minted credential .*the broker and the sim most likely use different registries/);
  t.ok(report.timings.scenarioMs < 5_000, `no 60 s scenario when no device got in (${report.timings.scenarioMs} ms)`);
  t.same(await simDevices(other), [], 'cleaned up all the same');
});

t.test('a run removes its devices, observer and profile; --keep keeps them, marked', async (t) => {
  const tb = await startTestBroker({ leewaySec: 1, logLevel: 'warn' });
  t.teardown(() => tb.close());
  const ops = `http://127.0.0.1:${tb.broker.ports.http}`;
  const kept = await runSimulation({ ...SHORT, url: tb.url, db: tb.db, opsUrl: ops, keep: true, idPrefix: 'keep' });
  t.equal(kept.registry.check.result, 'match', kept.registry.check.detail);
  everyInvariantPassed(t, kept.invariants, LEFT_OUT);
  t.ok(kept.ok, 'the kept run passed');
  t.equal(kept.registry.cleanup.kept, true);
  t.equal((await simDevices(tb.db)).length, SHORT.devices + 1, 'devices and observer stay, marked as simulation devices');
  const listed = JSON.parse((await runCli(['devices', '--search', 'keep-', '--json', '--db', tb.db])).stdout) as { simulation: boolean }[];
  t.ok(listed.length === SHORT.devices + 1 && listed.every((d) => d.simulation), 'devices --json says "simulation": true');

  const run = await runSimulation({ ...SHORT, url: tb.url, db: tb.db, opsUrl: ops, idPrefix: 'gone' });
  everyInvariantPassed(t, run.invariants, LEFT_OUT);
  t.ok(run.ok, 'the run passed');
  t.equal(run.registry.cleanup.removedDevices, SHORT.devices + 1);
  t.equal(run.registry.cleanup.profileRemoved, false, 'the profile stays while the kept run\'s devices use it');
  t.same((await simDevices(tb.db)).filter((d) => d.id.startsWith('gone-')), [], 'its devices are gone, revoked ones included');

  const keptIds = (await simDevices(tb.db)).map((d) => d.id as DeviceId);
  const reg = tb.issuer.reg;
  await revokeDevices(reg, keptIds, 'test');
  await expireTokens(tb.db);
  await deleteDevices(reg, keptIds);
  t.equal((await reg.devices.list()).length, 0);
  const cli = await runCli(['profile', 'delete', SIM_PROFILE, '--db', tb.db]);
  t.equal(cli.code, 0, cli.stderr);
  t.equal((await reg.profiles.get(SIM_PROFILE)), undefined);
  t.ok((await reg.audit.query({ action: 'simulation.cleanup' })).length === 1, 'the clean-up is audited (one row per run)');
});

t.test('Ctrl-C during a sim: stops, removes its devices, exit 130', async (t) => {
  const tb = await startTestBroker({ leewaySec: 1, logLevel: 'warn' });
  t.teardown(() => tb.close());
  const child = spawnCli(['sim', '--url', tb.url, '--db', tb.db, '--broker', `http://127.0.0.1:${tb.broker.ports.http}`, '--devices', '6', '--duration', '120s', '--token-ttl', '5s', '--leeway', '1s']);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Wait until its fleet is provisioned and has had time to connect.
  for (let k = 0; k < 600 && (await tb.issuer.reg.devices.list()).filter((d) => d.simulation).length < 7; k++) await sleep(50);
  await sleep(3000);
  child.kill('SIGINT');
  const code = await exited;
  t.equal(code, 130, `exit 130 (stderr: ${stderr})`);
  t.match(stderr, /stopping the simulation and removing its devices/);
  t.match(stdout, /INTERRUPTED \(Ctrl-C\)/);
  t.match(stdout, /\nRESULT: INTERRUPTED \(Ctrl-C\) after \S+ of 2m: saw \d+ connects, \d+ publishes, \d+ renewals, \d+ revocation kicks/, 'what it saw, not a verdict');
  t.notMatch(stdout, /RESULT: (FAIL|PASS)/);
  t.match(stdout, /clean-up: removed 7 simulation device\(s\) and the sim-sensor profile/);
  t.same((await tb.issuer.reg.devices.list()), [], 'nothing left in the registry');
});

t.test('devices delete and profile delete: the command, its exit code, its one line', async (t) => {
  const tb = await startTestBroker({ logLevel: 'warn' });
  t.teardown(() => tb.close());
  const cli = (...args: string[]) => runCli([...args, '--db', tb.db]);
  const [first] = await tb.provision(['del-1', 'del-2']);

  refused(t, await cli('devices', 'delete', 'del-1'), 4, /^credbroker: device "del-1" is active: only a revoked device can be deleted \(credbroker revoke del-1 first\); nothing was deleted$/);
  refused(t, await cli('devices', 'delete', 'nope'), 3, /^credbroker: no device "nope"/);
  t.equal((await cli('revoke', 'del-1')).code, 0);
  refused(t, await cli('devices', 'delete', 'del-1'), 4, /^credbroker: device "del-1" has a revoked token that would still be within its lifetime until \S+Z: delete it after that/);
  refused(t, await cli('profile', 'delete', 'sensor'), 4, /^credbroker: profile "sensor" is used by 2 device\(s\)/);
  refused(t, await cli('profile', 'delete', 'nosuch'), 3, /^credbroker: unknown profile "nosuch"/);

  // Once its tokens are past their lifetime, it goes.
  await expireTokens(tb.db, 'del-1');
  const r = await cli('devices', 'delete', 'del-1');
  t.equal(r.code, 0, r.stderr);
  t.same(lines(r.stdout), ['deleted del-1 (profile sensor)', 'deleted 1 device']);
  t.equal((await tb.issuer.reg.devices.get('del-1')), undefined);
  t.same((await tb.issuer.reg.audit.query({ deviceId: 'del-1', action: 'device.delete' })).map((e) => e.action), ['device.delete']);

  // The running broker forgets the device: the id can be provisioned again and connect,
  // while the deleted device's own token stays refused.
  await sleep(500);
  const [again] = await tb.provision(['del-1']);
  const ok = await connectDevice(tb.url, again!);
  t.equal(ok.code, 0, 'the new del-1 connects');
  ok.client?.end(true);
  const old = await connectDevice(tb.url, first!);
  t.not(old.code, 0, `the deleted device's token is refused (CONNACK ${old.code})`);
  old.client?.end(true);
});

const claims = (sub: string, jti: string, iat: number) => ({ sub: sub as DeviceId, jti: jti as Jti, iat });

t.test('the broker\'s memory of a deleted device: old tokens refused, new ones accepted, forgotten in time', async (t) => {
  const s = new RevocationState();
  const now = 1_700_000_000_000;
  s.revokeDevice('d');
  s.forgetDevice('d', 3_600_000, now);
  t.equal(s.isDeviceRevoked('d'), false);
  t.equal(s.refusal(claims('d', 'a', Math.floor(now / 1000) - 10)), 'device_revoked', 'a token of the deleted device');
  t.equal(s.refusal(claims('d', 'b', Math.floor(now / 1000) + 5)), null, 'a token of a device provisioned since');
  s.prune(now + 3_600_000 + 61_000);
  t.equal(s.refusal(claims('d', 'a', Math.floor(now / 1000) - 10)), null, 'forgotten once any token of it would have expired');
});

t.test('the ops address is guessed only next to serve\'s default MQTT port', async (t) => {
  const { defaultOpsUrl } = await import('../device-sim/preflight.js');
  t.equal(defaultOpsUrl('mqtt://127.0.0.1:1883'), 'http://127.0.0.1:9100');
  t.equal(defaultOpsUrl('mqtt://broker.example.com'), 'http://broker.example.com:9100');
  t.equal(defaultOpsUrl('mqtt://127.0.0.1:18831'), null, 'another port: 9100 may belong to another broker');
  t.equal(defaultOpsUrl('mqtts://broker.example.com:8883'), null);
});
