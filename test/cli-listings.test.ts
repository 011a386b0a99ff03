import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lines, runCli, spawnCli, type CliResult } from './helpers/cli.js';
import { deviceCounter } from './helpers/device-count.js';
import { registryTargetIn } from './helpers/backend.js';

/** A refused command: the exit code, one `credbroker: ...` line on stderr, nothing on stdout. */
function refused(t: Test, r: CliResult, code: number, message: RegExp): void {
  t.equal(r.code, code, `exit ${code}`);
  t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
  t.match(r.stderr, message);
  t.equal(r.stdout, '');
}

interface Dev { id: string }
interface Ev { id: number; action: string; deviceId: string | null }
interface Devices { devices: Dev[]; next: string | null }
interface Events { events: Ev[]; next: string | null }

t.test('listings: --limit/--after, filters, one JSON shape per flag set', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  const cli = (...args: string[]) => runCli([...args, '--db', db]);
  t.equal((await cli('init')).code, 0);
  const pumps = Array.from({ length: 25 }, (_, k) => `pump-${String(k + 1).padStart(2, '0')}`);
  t.equal((await cli('provision', ...pumps, '--profile', 'sensor', '--out', join(dir, 'creds'))).code, 0);
  t.equal((await cli('provision', 'gw-1', 'gw-2', '--profile', 'observer', '--out', join(dir, 'creds'))).code, 0);
  t.equal((await cli('revoke', 'pump-03', 'pump-07', '--reason', 'lost')).code, 0);
  const all = [...pumps, 'gw-1', 'gw-2'].sort();

  t.test('devices: no paging flag keeps the complete bare array', async (t) => {
    const r = await cli('devices', '--json');
    t.equal(r.code, 0);
    t.same((JSON.parse(r.stdout) as Dev[]).map((d) => d.id), all);
    t.equal(r.stderr, '');
  });

  t.test('devices --limit (text): the footer names the cursor', async (t) => {
    const r = await cli('devices', '--limit', '10');
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^10 device\(s\): 8 active, 2 revoked$/m);
    t.match(lines(r.stdout).at(-1)!, /^more devices after these 10: add --after pump-08$/);
    const last = await cli('devices', '--limit', '10', '--after', 'pump-18');
    t.notMatch(last.stdout, /more devices/, 'no footer on the last page');
    t.match(last.stdout, /^7 device\(s\)/m);
  });

  t.test('devices --json --limit without --after: the array, and stderr says it was cut off', async (t) => {
    const r = await cli('devices', '--json', '--limit', '10');
    t.equal(r.code, 0);
    t.equal((JSON.parse(r.stdout) as Dev[]).length, 10);
    t.match(r.stderr, /^credbroker: cut off at 10 devices; the rest with --after pump-08/);
  });

  t.test('devices --json --after "": {devices, next} pages that add up to the whole list', async (t) => {
    const seen: string[] = [];
    let cursor = '';
    for (let pages = 0; pages < 10; pages++) {
      const r = await cli('devices', '--json', '--limit', '7', '--after', cursor);
      t.equal(r.code, 0, r.stderr);
      t.equal(r.stderr, '', 'nothing on stderr: the page says it all');
      const page = JSON.parse(r.stdout) as Devices;
      t.same(Object.keys(page), ['devices', 'next']);
      seen.push(...page.devices.map((d) => d.id));
      if (page.next === null) break;
      cursor = page.next;
    }
    t.same(seen, all, 'every device once, in order');
    const end = JSON.parse((await cli('devices', '--json', '--after', '')).stdout) as Devices;
    t.equal(end.next, null, 'no --limit: one complete page');
    t.equal(end.devices.length, all.length);
  });

  t.test('devices --search PREFIX, combined with --status', async (t) => {
    const r = JSON.parse((await cli('devices', '--search', 'pump-0', '--json')).stdout) as Dev[];
    t.same(r.map((d) => d.id), pumps.slice(0, 9));
    const revoked = JSON.parse((await cli('devices', '--search', 'pump-', '--status', 'revoked', '--json')).stdout) as Dev[];
    t.same(revoked.map((d) => d.id), ['pump-03', 'pump-07']);
    t.same(JSON.parse((await cli('devices', '--search', 'zzz', '--json')).stdout), []);
  });

  t.test('devices: bad input', async (t) => {
    refused(t, await cli('devices', '--profile', 'nosuch'), 3, /^credbroker: unknown profile "nosuch" \(known: observer, sensor\)/);
    refused(t, await cli('devices', '--after', 'a/b'), 2, /^credbroker: invalid --after "a\/b": the cursor is a device id/);
    refused(t, await cli('devices', '--search', 'pump/#'), 2, /^credbroker: invalid --search "pump\/#"/);
    refused(t, await cli('devices', '--limit', '0'), 2, /^credbroker: invalid --limit "0": use a whole number from 1 to 1000000/);
  });

  t.test('audit: --action, --device, paging', async (t) => {
    const full = JSON.parse((await cli('audit', '--json', '--limit', '1000')).stdout) as Ev[];
    t.ok(Array.isArray(full), 'an explicit --limit without --after keeps the array (scripts from before)');
    const revokes = JSON.parse((await cli('audit', '--action', 'device.revoke', '--json')).stdout) as Ev[];
    t.same(revokes.map((e) => e.deviceId).sort(), ['pump-03', 'pump-07']);
    const deviceStar = JSON.parse((await cli('audit', '--action', 'device.*', '--json')).stdout) as Ev[];
    t.same(new Set(deviceStar.map((e) => e.action)), new Set(['device.provision', 'device.revoke']));
    t.equal(deviceStar.length, full.filter((e) => e.action.startsWith('device.')).length);
    const one = JSON.parse((await cli('audit', '--device', 'pump-03', '--action', 'device.revoke', '--json')).stdout) as Ev[];
    t.same(one.map((e) => [e.action, e.deviceId]), [['device.revoke', 'pump-03']]);

    const seen: number[] = [];
    let cursor = '';
    for (let pages = 0; pages < 20; pages++) {
      const page = JSON.parse((await cli('audit', '--json', '--limit', '4', '--after', cursor)).stdout) as Events;
      seen.push(...page.events.map((e) => e.id));
      if (page.next === null) break;
      cursor = page.next;
    }
    t.same(seen, full.map((e) => e.id), 'pages of 4 add up to the whole log, newest first');

    const text = await cli('audit', '--limit', '3');
    t.match(lines(text.stdout).at(-1)!, new RegExp(`^more events after these 3: add --after ${full[2]!.id}$`));
    const cut = await cli('audit', '--json', '--limit', '3');
    t.match(cut.stderr, new RegExp(`cut off at 3 events; the rest with --after ${full[2]!.id}`));

    refused(t, await cli('audit', '--after', 'yesterday'), 2, /^credbroker: invalid --after "yesterday": the cursor is an audit event id/);
    refused(t, await cli('audit', '--action', 'device revoke'), 2, /^credbroker: invalid --action "device revoke"/);
  });

  t.test('one JSON shape per concept: a profile in `show ID` is the profile of `profile show`', async (t) => {
    const show = JSON.parse((await cli('show', 'pump-01', '--json')).stdout) as { profile: Record<string, unknown> };
    const profile = JSON.parse((await cli('profile', 'show', 'sensor', '--json')).stdout) as Record<string, unknown>;
    const { devices, ...rest } = profile;
    t.equal(typeof devices, 'number');
    t.same(show.profile, rest);
    t.equal(show.profile.tokenTtl, '1h');
    t.equal(show.profile.tokenTtlMs, 3_600_000);
  });

  t.test('keys jwks --json is accepted (the JWKS is JSON anyway)', async (t) => {
    const [plain, json] = await Promise.all([cli('keys', 'jwks'), cli('keys', 'jwks', '--json')]);
    t.equal(json.code, 0, json.stderr);
    t.same(JSON.parse(json.stdout), JSON.parse(plain.stdout));
  });
});


t.test('Ctrl-C during a batch: stops after the chunk in hand and says how to resume', async (t) => {
  const N = 10_000;
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  const out = join(dir, 'creds');
  const batch = join(dir, 'batch.csv');
  writeFileSync(batch, `id\n${Array.from({ length: N }, (_, k) => `int-${String(k).padStart(5, '0')}`).join('\n')}\n`);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const args = ['provision', '--batch', batch, '--profile', 'sensor', '--out', out, '--db', db];
  const counter = await deviceCounter(db);
  t.teardown(() => counter.close());

  const child = spawnCli(args);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => { done = true; });
  // Interrupt in the first half, once something has committed.
  while (!done) {
    const n = await counter.count();
    if (n > 0 && n < N / 2) { child.kill('SIGINT'); break; }
    await sleep(5);
  }
  const code = await exited;
  t.equal(code, 130, `exit 130 (stderr: ${stderr})`);
  const last = lines(stderr).at(-1)!;
  t.match(last, /^credbroker: interrupted with [\d,]+ device\(s\) of the batch not provisioned; run the same command again to provision the rest \(devices already provisioned are skipped\)$/);
  t.match(stdout, /^provisioned [\d,]+, skipped \(already provisioned\) 0, invalid 0/m, 'the summary of what was done');
  const kept = await counter.count();
  t.ok(kept > 0 && kept < N, `${kept} devices kept`);

  const again = await runCli(args);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, new RegExp(`provisioned ${(N - kept).toLocaleString('en-US')}, skipped \\(already provisioned\\) ${kept.toLocaleString('en-US')}`));
  t.equal(await counter.count(), N);
});
