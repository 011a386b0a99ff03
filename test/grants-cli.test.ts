import t from 'tap';
import { join } from 'node:path';
import { openRegistry } from '../registry/index.js';
import { runCli } from './helpers/cli.js';
import { registryTargetIn } from './helpers/backend.js';

t.test('credbroker grant / grants / revoke --grant', async (t) => {
  const dir = t.testdir();
  const db = await registryTargetIn(dir, 'r.db');
  const cli = (...args: string[]) => runCli([...args, '--db', db]);
  t.equal((await runCli(['init', '--db', db])).code, 0);
  t.equal((await cli('provision', 'pump-7', '--profile', 'sensor', '--out', join(dir, 'creds'))).code, 0);
  t.equal((await cli('provision', 'fleet-obs', '--profile', 'observer', '--out', join(dir, 'creds'))).code, 0);

  t.test('mints a token for grant:NAME with exactly the patterns given', async (t) => {
    const r = await cli('grant', 'tech-1', '--within', 'fleet-obs', '--sub', 'devices/pump-7/telemetry', '--pub', 'devices/pump-7/commands/reboot', '--ttl', '30m', '--reason', 'INC-4711');
    t.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    t.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/, 'the token alone on stdout');
    t.match(r.stderr, /granted grant:tech-1: jti \S+, expires /);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    t.match(claims, { sub: 'grant:tech-1', acl: { pub: ['devices/pump-7/commands/reboot'], sub: ['devices/pump-7/telemetry'] }, reason: 'INC-4711' });
    t.equal((claims.exp as number) - (claims.iat as number), 1800);
    const json = await cli('grant', 'tech-j', '--sub', 'devices/pump-7/telemetry', '--ttl', '5m', '--json');
    t.equal(json.code, 0, json.stderr);
    t.match(JSON.parse(json.stdout), { name: 'tech-j', principal: 'grant:tech-j', token: /^eyJ/, expiresAt: String, subscribe: ['devices/pump-7/telemetry'], publish: [] });
    t.equal(json.stderr, '', '--json: nothing else');
  });

  t.test('refusals: one line, the right exit code, nothing recorded', async (t) => {
    const cases: [string[], number, RegExp][] = [
      [['grant', 'x1', '--within', 'fleet-obs', '--sub', '#', '--ttl', '30m'], 2, /--sub "#" is not within device fleet-obs's ACL \(subscribe: devices\/#\)/],
      [['grant', 'x1', '--within', 'pump-7', '--sub', 'devices/{device}/telemetry', '--ttl', '30m'], 2, /--sub "devices\/pump-7\/telemetry" is not within device pump-7's ACL \(subscribe: devices\/pump-7\/commands\/#\)/],
      [['grant', 'x1', '--within', 'pump-7', '--pub', 'devices/pump-7/#', '--ttl', '30m'], 2, /--pub "devices\/pump-7\/#" is not within device pump-7's ACL/],
      [['grant', 'x1', '--sub', '$SYS/#', '--ttl', '30m'], 2, /--sub "\$SYS\/#" is a broker topic/],
      [['grant', 'x1', '--sub', '$devices/pump-7/token/+', '--ttl', '30m'], 2, /is a broker topic/],
      [['grant', 'x1', '--pub', '$devices/pump-7/token/renew', '--ttl', '30m'], 2, /is a broker topic/],
      [['grant', 'x1', '--sub', '$claims/#', '--ttl', '30m'], 2, /is a broker topic/],
      [['grant', 'x1', '--sub', 'a/{device}', '--ttl', '30m'], 2, /only means something with --within/],
      [['grant', 'x1', '--sub', 'a/b+', '--ttl', '30m'], 2, /not a valid MQTT topic filter/],
      [['grant', 'x1', '--sub', 'a/b', '--ttl', '25h'], 2, /--ttl 25h is above the cap of 24h on grant lifetimes/],
      [['grant', 'x1', '--sub', 'a/b'], 2, /required option '--ttl/],
      [['grant', 'x1', '--ttl', '1h'], 2, /at least one --pub or --sub/],
      [['grant', 'bad/name', '--sub', 'a/b', '--ttl', '1h'], 2, /invalid grant name/],
      [['grant', 'x1', '--sub', 'a/b', '--ttl', '1h', '--reason', 'two\nlines'], 2, /--reason must be one line/],
      [['grant', 'x1', '--within', 'nope', '--sub', 'a/b', '--ttl', '1h'], 3, /no device "nope"/],
      [['grant', 'tech-1', '--sub', 'a/b', '--ttl', '1h'], 4, /grant "tech-1" is live until .*: revoke it first/],
      [['revoke', '--grant', 'nobody'], 3, /no grant named "nobody"/],
      [['provision', 'grant:tech-1', '--profile', 'sensor', '--out', join(dir, 'creds')], 2, /reserved for grant sessions/],
      [['revoke', '--grant', 'tech-1', 'pump-7'], 2, /one of them/],
      [['revoke', '--grant', 'tech-1', '--keep-retained'], 2, /--keep-retained applies to revoking devices/],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(...args);
      t.equal(r.code, code, `${args.join(' ')}: exit ${code}`);
      t.match(r.stderr, message, args.join(' '));
      t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
      t.equal(r.stdout, '', 'nothing on stdout');
    }
    const list = JSON.parse((await cli('grants', '--json')).stdout) as { name: string }[];
    t.same(list.map((g) => g.name).sort(), ['tech-1', 'tech-j'], 'no refused grant was recorded');
  });

  t.test('the TTL cap is a registry setting, fixed by init --max-grant-ttl', async (t) => {
    const small = await registryTargetIn(dir, 'small.db');
    t.equal((await runCli(['init', '--max-grant-ttl', '1h', '--db', small])).code, 0);
    const over = await runCli(['grant', 'capped', '--sub', 'a/b', '--ttl', '2h', '--db', small]);
    t.equal(over.code, 2);
    t.match(over.stderr, /--ttl 2h is above the cap of 1h on grant lifetimes/);
    t.equal((await runCli(['grant', 'capped', '--sub', 'a/b', '--ttl', '1h', '--db', small])).code, 0);
    const again = await runCli(['init', '--max-grant-ttl', '2h', '--db', small]);
    t.equal(again.code, 2, 'fixed at creation');
    t.match(again.stderr, /already exists with grant lifetime cap 1h \(asked for 2h\)/);
    const tooLong = await runCli(['init', '--max-grant-ttl', '48h', '--db', join(dir, 'x.db')]);
    t.equal(tooLong.code, 2);
    t.match(tooLong.stderr, /--max-grant-ttl 48h is above the cap of 24h on access token lifetimes/);
    t.equal((await cli('grant', 'capped', '--sub', 'a/b', '--ttl', '1h')).code, 0);
  });

  t.test('grants lists, --active filters, revoke --grant kills it, and no token is ever stored', async (t) => {
    const table = await cli('grants');
    t.equal(table.code, 0, table.stderr);
    t.match(table.stdout, /tech-1\s+active\s.*fleet-obs\s+devices\/pump-7\/commands\/reboot\s+devices\/pump-7\/telemetry\s+INC-4711/);
    const rev = await cli('revoke', '--grant', 'tech-1', '--reason', 'inspection done');
    t.equal(rev.code, 0, rev.stderr);
    t.match(rev.stdout, /revoked grant tech-1 \(jti \S+\); the broker closes its session within a second/);
    const again = await cli('revoke', '--grant', 'tech-1', '--json');
    t.equal(again.code, 0);
    t.match(JSON.parse(again.stdout), { grant: { name: 'tech-1', revoked: false, alreadyOver: true } });
    const active = JSON.parse((await cli('grants', '--active', '--json')).stdout) as { name: string; status: string }[];
    t.same(active.map((g) => g.name).sort(), ['capped', 'tech-j']);
    const all = JSON.parse((await cli('grants', '--json')).stdout) as { name: string; status: string }[];
    t.equal(all.find((g) => g.name === 'tech-1')?.status, 'revoked');
    t.equal((await cli('grant', 'tech-1', '--sub', 'a/b', '--ttl', '1m')).code, 0, 'a revoked name may be granted again');

    const audit = JSON.parse((await cli('audit', '--device', 'grant:tech-1', '--json')).stdout) as { action: string; details: Record<string, unknown> }[];
    t.match(audit.find((e) => e.action === 'grant.revoke')?.details, { grant: 'tech-1', reason: 'INC-4711', why: 'inspection done' });
    // Newest first: the last issue row is the first grant of the name.
    t.match(audit.filter((e) => e.action === 'grant.issue').at(-1)?.details, { grant: 'tech-1', reason: 'INC-4711', within: 'fleet-obs' });
    const raw = await openRegistry(db);
    const everything = JSON.stringify([await raw.grants.list(), await raw.audit.query(), await raw.changes.since(0)]);
    await raw.close();
    t.notMatch(everything, /eyJ[\w-]{10,}\.eyJ/, 'no token in grants, audit or the change feed');
  });
});
