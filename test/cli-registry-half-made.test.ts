import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openRegistry } from '../registry/index.js';
import { openIssuer, provisionDevices } from '../provisioning/index.js';
import { lines, runCli, spawnCli } from './helpers/cli.js';
import { registryTargetIn } from './helpers/backend.js';

// A registry copy stopped half-way leaves nothing at --to, and no command but init gives
// a first signing key to a registry that has none (what such a copy used to leave behind).

const NO_KEY = 'credbroker: the registry has no signing key (never initialised, or a "registry copy" into it stopped half-way): run "credbroker init" on it to make its first key, or copy into a new one again';

t.test('a registry without a signing key: refused by every command but init', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir);
  // Settings and seeded profiles, no key: what an interrupted copy left.
  await (await openRegistry(db)).close();

  for (const args of [['provision', 'dev-1', '--profile', 'sensor', '--json'], ['token', 'dev-1'], ['keys', 'list'], ['keys', 'rotate'], ['keys', 'jwks']]) {
    const r = await runCli([...args, '--db', db]);
    t.equal(r.code, 5, `${args.join(' ')}: exit 5 (registry problem)`);
    t.same(lines(r.stderr), [NO_KEY], `${args.join(' ')}: one line naming init`);
  }
  const serve = await runCli(['serve', '--db', db, '--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0'], { timeoutMs: 60_000 });
  t.equal(serve.code, 5, 'serve --db: exit 5');
  t.same(lines(serve.stderr), [NO_KEY]);
  const reg = await openRegistry(db, { readonly: true });
  t.same(await reg.keys.all(), [], 'and none of them made a key');
  await reg.close();

  const init = await runCli(['init', '--db', db]);
  t.equal(init.code, 0, `init gives it its first key: ${init.stderr}`);
  const provision = await runCli(['provision', 'dev-1', '--profile', 'sensor', '--db', db, '--json']);
  t.equal(provision.code, 0, `then provision works: ${provision.stderr}`);
});

t.test('Ctrl-C during registry copy to a file leaves nothing behind', async (t) => {
  t.setTimeout(300_000);
  const dir = t.testdir();
  const from = await registryTargetIn(dir, 'source.db');
  const issuer = await openIssuer(from);
  // Enough devices that the copy is still running when the signal comes.
  await provisionDevices(issuer, Array.from({ length: 5_000 }, (_, i) => ({ line: i + 2, id: `dev-${i}` })), { profile: 'sensor', brokerUrl: 'mqtt://127.0.0.1:1883' });
  await issuer.reg.close();

  const to = join(dir, 'copy.db');
  const child = spawnCli(['registry', 'copy', '--from', from, '--to', to]);
  let err = '';
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (code, signal) => r([code, signal])));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the copy never started: ${err}`)), 120_000);
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString('utf8');
      if (/copied 0 of 5,000 devices/.test(err)) { clearTimeout(timer); resolve(); }
    });
  });
  child.kill('SIGINT');
  const [code] = await exited;
  t.equal(code, 130, 'exit 130, as for Ctrl-C');
  t.equal(lines(err).at(-1), `credbroker: interrupted: nothing was written to ${to}`);
  t.same(readdirSync(dir).filter((f) => f.startsWith('copy.db') || f.startsWith('.copy.db')), [], 'no registry file, no temporary file');

  const again = await runCli(['registry', 'copy', '--from', from, '--to', to, '--json']);
  t.equal(again.code, 0, `the same command runs again: ${again.stderr}`);
  t.equal((JSON.parse(again.stdout) as { devices: number; to: string }).devices, 5_000);
  t.equal((JSON.parse(again.stdout) as { to: string }).to, to, 'and names the file it wrote');
  t.same(readdirSync(dir).filter((f) => f.startsWith('.copy.db')), [], 'its temporary name is gone');
});
