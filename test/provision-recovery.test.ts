import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openIssuer, provisionDevices, type BatchRow } from '../provisioning/index.js';
import type { DeviceId } from '../registry/index.js';
import { jwtPayload } from './helpers/cli.js';
import { registryTargetIn } from './helpers/backend.js';

const rows = (n: number, prefix = 'r'): BatchRow[] => Array.from({ length: n }, (_, k) => ({ line: k + 2, id: `${prefix}-${k}` }));

// A batch of more than 2,000 devices writes its files on a thread of its own, a smaller one inline: both recover alike.
for (const { devices, chunkSize } of [{ devices: 300, chunkSize: 100 }, { devices: 2500, chunkSize: 500 }]) {
  t.test(`a crash between the registry commit and the file renames is recovered on the next run (${devices} devices)`, async (t) => {
    const dir = t.testdir();
    const out = join(dir, 'creds');
    const issuer = await openIssuer(await registryTargetIn(dir));
    t.teardown(() => issuer.reg.close());
    const base = { profile: 'sensor', outDir: out, brokerUrl: 'mqtt://localhost:1883', chunkSize };

    let chunks = 0;
    await t.rejects(provisionDevices(issuer, rows(devices), {
      ...base,
      afterChunkCommit: () => {
        if (++chunks === 2) throw new Error('simulated crash after commit');
      },
    }), /simulated crash/);
    const after = readdirSync(out);
    t.equal(after.filter((f) => f.endsWith('.json')).length, chunkSize, 'chunk 1 renamed into place');
    t.equal(after.filter((f) => f.endsWith('.tmp')).length, chunkSize, 'chunk 2 committed but still pending; the chunk written meanwhile is gone');
    t.equal((await issuer.reg.devices.list()).length, 2 * chunkSize, 'two chunks committed');

    const r = await provisionDevices(issuer, rows(devices), base);
    t.equal(r.provisioned.length, devices - 2 * chunkSize, 'only the never-committed devices are minted');
    t.equal(r.skipped.length, 2 * chunkSize);
    t.equal(r.recovered.length, chunkSize, 'the pending files of the committed chunk are put in place');
    t.same(r.missingFiles, []);
    const files = readdirSync(out);
    t.equal(files.length, devices);
    t.ok(files.every((f) => f.endsWith('.json')), 'nothing pending, no lock left');
    for (const f of files) {
      const c = JSON.parse(readFileSync(join(out, f), 'utf8')) as { deviceId: string; accessToken: string };
      const token = await issuer.reg.tokens.get(jwtPayload(c.accessToken).jti as string);
      if (token?.deviceId !== c.deviceId) t.fail(`${f} does not hold the registered token`);
    }
  });
}

t.test('recovered after the pending files\' tokens expired and were pruned (matched by refresh credential)', async (t) => {
  const dir = t.testdir();
  const out = join(dir, 'creds');
  const issuer = await openIssuer(await registryTargetIn(dir));
  t.teardown(() => issuer.reg.close());
  const base = { profile: 'sensor', outDir: out, brokerUrl: 'mqtt://localhost:1883', chunkSize: 10 };
  await t.rejects(provisionDevices(issuer, rows(10, 'late'), { ...base, afterChunkCommit: () => { throw new Error('simulated crash after commit'); } }), /simulated crash/);
  // The factory re-runs the next day: the broker's maintenance has pruned the expired token records meanwhile.
  await issuer.reg.tokens.pruneExpired(Number.MAX_SAFE_INTEGER, 1000);
  t.equal((await issuer.reg.tokens.liveFor('late-0' as DeviceId, 0)).length, 0, 'token records gone');
  const r = await provisionDevices(issuer, rows(10, 'late'), base);
  t.equal(r.recovered.length, 10, 'every pending file is still put in place');
  t.same(r.missingFiles, []);
});

t.test('pending files that never committed are discarded, and missing files are reported', async (t) => {
  const dir = t.testdir();
  const out = join(dir, 'creds');
  const issuer = await openIssuer(await registryTargetIn(dir));
  t.teardown(() => issuer.reg.close());
  const base = { profile: 'sensor', outDir: out, brokerUrl: 'mqtt://localhost:1883', chunkSize: 50 };
  // devices provisioned into another folder
  await provisionDevices(issuer, rows(10, 'elsewhere'), { ...base, outDir: join(dir, 'other') });
  const r = await provisionDevices(issuer, [...rows(10, 'elsewhere'), ...rows(5, 'new')], base);
  t.equal(r.provisioned.length, 5);
  t.equal(r.missingFiles.length, 10, 'already provisioned without a file in this folder');
  t.same(readdirSync(out).sort(), rows(5, 'new').map((x) => `${x.id as string}.json`).sort());
});

t.test('a second run into the same folder while one is running is refused', async (t) => {
  const dir = t.testdir();
  const out = join(dir, 'creds');
  const issuer = await openIssuer(await registryTargetIn(dir));
  t.teardown(() => issuer.reg.close());
  const base = { profile: 'sensor', outDir: out, brokerUrl: 'mqtt://localhost:1883', chunkSize: 10 };
  let inner: Promise<string> | undefined;
  const outer = await provisionDevices(issuer, rows(30, 'a'), {
    ...base,
    afterChunkCommit: () => {
      inner ??= provisionDevices(issuer, rows(5, 'b'), base).then(() => 'provisioned', (err: Error) => err.message);
    },
  });
  t.match(await inner, /another provisioning run \(pid \d+\) is writing to/);
  t.equal(outer.provisioned.length, 30, 'the first run is not disturbed');
  t.equal(readdirSync(out).length, 30);
  t.equal((await provisionDevices(issuer, rows(5, 'b'), base)).provisioned.length, 5, 'the folder is free again afterwards');
});
