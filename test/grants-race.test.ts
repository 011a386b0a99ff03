// One live grant per NAME under concurrency, on the engine the run picks
// (helpers/backend.ts): operators granting one name at once, in separate
// processes' worth of connections, get exactly one grant between them.
import t from 'tap';
import { issueGrant } from '../operations/index.js';
import { openIssuer, type Issuer } from '../provisioning/index.js';
import { freshRegistryTarget } from './helpers/backend.js';
import { lines, runCli } from './helpers/cli.js';

const OPERATORS = 8;

t.test('operators granting one NAME at once: exactly one grant, the others ERR_GRANT_EXISTS', async (t) => {
  const db = await freshRegistryTarget(t);
  // One issuer (own connections) per operator, as separate CLI runs would have.
  const issuers: Issuer[] = [];
  for (let i = 0; i < OPERATORS; i++) issuers.push(await openIssuer(db));
  t.teardown(async () => { for (const i of issuers) await i.reg.close(); });

  for (const round of ['tech-a', 'tech-b', 'tech-c']) {
    const results = await Promise.allSettled(issuers.map((issuer) => issueGrant(issuer, { name: round, publish: [], subscribe: ['devices/+/telemetry'], ttlMs: 1_800_000 })));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error & { code?: string }] : []));
    t.equal(won.length, 1, `${round}: exactly one operator's grant is minted`);
    t.same(lost.map((e) => e.code), Array(OPERATORS - 1).fill('ERR_GRANT_EXISTS'), `${round}: every other one is refused as existing`);
    t.same((await issuers[0]!.reg.grants.list()).filter((g) => g.name === round).length, 1, `${round}: one grant on record`);
  }
});

t.test('two `credbroker grant NAME` at once: one token, one one-line refusal (exit 4)', async (t) => {
  const db = await freshRegistryTarget(t);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const grant = () => runCli(['grant', 'night-shift', '--sub', 'devices/+/telemetry', '--ttl', '30m', '--db', db]);
  const [a, b] = await Promise.all([grant(), grant()]);
  const [ok, refused] = a.code === 0 ? [a, b] : [b, a];
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout.trim(), /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/, 'the winner prints its token');
  t.equal(refused.code, 4, refused.stderr);
  t.equal(refused.stdout, '', 'the refused one prints no token');
  t.equal(lines(refused.stderr).length, 1, 'one line');
  t.match(refused.stderr, /grant "night-shift" is live until \S+: revoke it first/);
});
