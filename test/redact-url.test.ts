// The one redactor (util/redact-url.ts): no part of a password survives, whatever
// it holds and whether or not the URL parses; and end to end, the CLI's error
// lines for an unusable bus URL and an unreachable PostgreSQL registry.
import t from 'tap';
import { lines, runCli } from './helpers/cli.js';
import { redactUrl } from '../util/redact-url.js';

/** Pieces of a password that must not appear (each at least 4 characters, so that the host and user do not match). */
const pieces = (password: string) => password.split(/[@: %/]+/).filter((p) => p.length >= 4);

t.test('a table of URLs and texts', async (t) => {
  const cases: { text: string; password: string; want: string }[] = [
    { text: 'redis://:TopSecretRedis@127.0.0.1:6379', password: 'TopSecretRedis', want: 'redis://:***@127.0.0.1:6379' },
    { text: 'redis://:TopSecretRedis@127.0.0.1:999999', password: 'TopSecretRedis', want: 'redis://:***@127.0.0.1:999999' },
    { text: 'rediss://bus-user:Bus:Pass@redis.example:6380/2', password: 'Bus:Pass', want: 'rediss://bus-user:***@redis.example:6380/2' },
    { text: 'postgres://cb:Xy@Secr3tTail@127.0.0.1:1/x', password: 'Xy@Secr3tTail', want: 'postgres://cb:***@127.0.0.1:1/x' },
    { text: 'postgres://cb:Secr3t Pw@127.0.0.1:5432/reg', password: 'Secr3t Pw', want: 'postgres://cb:***@127.0.0.1:5432/reg' },
    { text: 'postgresql://cb:P%40ss%3Aw0rd%20x@db.internal/reg?sslmode=verify-full', password: 'P%40ss%3Aw0rd%20x', want: 'postgresql://cb:***@db.internal/reg?sslmode=verify-full' },
    { text: 'postgres://cb:a/b@c:d@[::1]:5432/reg', password: 'a/b@c:d', want: 'postgres://cb:***@[::1]:5432/reg' },
    { text: 'mqtt://dev:Very$ecretMqtt@broker:1883', password: 'Very$ecretMqtt', want: 'mqtt://dev:***@broker:1883' },
    { text: 'registry postgres://cb:Xy@Secr3tTail@127.0.0.1:1/x is unavailable (connect ECONNREFUSED 127.0.0.1:1)', password: 'Xy@Secr3tTail', want: 'registry postgres://cb:***@127.0.0.1:1/x is unavailable (connect ECONNREFUSED 127.0.0.1:1)' },
    { text: 'from redis://:One1Secret@a:1 to redis://:Two2Secret@b:2', password: 'One1Secret Two2Secret', want: 'from redis://:***@a:1 to redis://:***@b:2' },
    { text: 'host=db user=cb password=KeyWordSecret dbname=reg', password: 'KeyWordSecret', want: 'host=db user=cb password=*** dbname=reg' },
    { text: "host=db password='Quoted Secret1' dbname=reg", password: 'Quoted Secret1', want: 'host=db password=*** dbname=reg' },
    { text: 'postgres://cb@127.0.0.1/reg?password=QuerySecret9', password: 'QuerySecret9', want: 'postgres://cb@127.0.0.1/reg?password=***' },
    { text: 'postgres://cb@127.0.0.1:5432/reg', password: '', want: 'postgres://cb@127.0.0.1:5432/reg' },
    { text: 'mqtt://127.0.0.1:1883', password: '', want: 'mqtt://127.0.0.1:1883' },
    { text: './data/credbroker.db', password: '', want: './data/credbroker.db' },
  ];
  for (const c of cases) {
    const got = redactUrl(c.text);
    t.equal(got, c.want, c.text);
    for (const p of pieces(c.password)) t.notOk(got.includes(p), `${c.text}: "${p}" not shown`);
  }
});

t.test('end to end through the CLI: stderr holds no part of the password', async (t) => {
  const cases: { name: string; args: string[]; password: string; code: number; message: RegExp }[] = [
    { name: 'serve --bus with a port out of range', args: ['serve', '--bus', 'redis://:TopSecretRedis@127.0.0.1:999999', '--workers', '2', '--mqtt-port', 'off', '--ws-port', 'off', '--http-port', 'off'], password: 'TopSecretRedis', code: 2, message: /invalid --bus "redis:\/\/:\*\*\*@127\.0\.0\.1:999999"/ },
    { name: 'devices --db, a password with @, unreachable', args: ['devices', '--db', 'postgres://cb:Xy@Secr3tTail@127.0.0.1:1/x'], password: 'Xy@Secr3tTail', code: 5, message: /postgres:\/\/cb:\*\*\*@127\.0\.0\.1:1\/x/ },
    { name: 'devices --db, a password with a space, unreachable', args: ['devices', '--db', 'postgres://cb:Secr3t Pw@127.0.0.1:1/x'], password: 'Secr3t Pw', code: 5, message: /postgres:\/\/cb:\*\*\*@127\.0\.0\.1:1\/x/ },
  ];
  for (const c of cases) {
    const r = await runCli(c.args);
    t.equal(r.code, c.code, `${c.name}: exit ${c.code} (${r.stderr.trim()})`);
    t.equal(lines(r.stderr).length, 1, `${c.name}: one line`);
    t.match(r.stderr, c.message, c.name);
    for (const p of [c.password, ...pieces(c.password)]) t.notOk(r.stderr.includes(p), `${c.name}: "${p}" not on stderr`);
    t.notOk(r.stdout.includes(c.password), `${c.name}: nor on stdout`);
  }
});
