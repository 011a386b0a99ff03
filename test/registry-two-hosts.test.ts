// Two hosts on one machine (issue 14, "Must show" 2): two `serve` nodes on different
// ports with the same PostgreSQL registry and the same Redis bus, devices on both, and
// the CLI in processes of its own as the operator's host. Revoke → kicked on both
// nodes; renew on either; a refresh replay across nodes revokes everywhere.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceCredentials } from '../provisioning/index.js';
import { closed, connect } from './helpers/broker.js';
import { runCli } from './helpers/cli.js';
import { sharedPostgres } from './helpers/postgres.js';
import { startRedis } from './helpers/redis.js';
import { renewalSession } from './helpers/renewal-session.js';
import { startServe } from './helpers/serve-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves with the time the client closed, or NaN after `ms`. */
const closedWithin = (p: Promise<number>, ms = 15_000) => Promise.race([p, sleep(ms).then(() => NaN)]);

t.test('two nodes, one PostgreSQL, one Redis bus, the CLI as a third host', async (t) => {
  const pg = await sharedPostgres();
  const db = await pg.newDatabase();
  const redis = await startRedis(t);
  const dir = t.testdir();
  const creds = join(dir, 'creds');
  t.equal((await runCli(['init', '--db', db])).code, 0);
  const prov = await runCli(['provision', 'a-1', 'b-1', 'roam-1', 'thief-1', '--profile', 'sensor', '--out', creds, '--db', db]);
  t.equal(prov.code, 0, prov.stderr);
  const read = (id: string) => JSON.parse(readFileSync(join(creds, `${id}.json`), 'utf8')) as DeviceCredentials;

  const nodeA = await startServe(['--bus', redis.url], {}, { db });
  const nodeB = await startServe(['--bus', redis.url], {}, { db });
  t.teardown(async () => { await nodeA.stop(); await nodeB.stop(); });
  t.not(nodeA.mqttPort, nodeB.mqttPort);
  const [urlA, urlB] = [`mqtt://127.0.0.1:${nodeA.mqttPort}`, `mqtt://127.0.0.1:${nodeB.mqttPort}`];

  t.test('renew on either node: a token renewed on A connects to B', async (t) => {
    const s = await renewalSession(urlA, 'roam-1', read('roam-1').accessToken);
    t.equal(s.code, 0);
    const a = await s.request!();
    t.equal(a.kind, 'accepted', 'renewed on node A');
    s.client!.end(true);
    const onB = await renewalSession(urlB, 'roam-1', a.body.accessToken as string);
    t.equal(onB.code, 0, 'node B accepts the token node A minted');
    t.equal((await onB.request!()).kind, 'accepted', 'and renews it too');
    onB.client!.end(true);
  });

  t.test('a refresh replay on node B revokes the device, whose session on node A is closed', async (t) => {
    const r0 = read('thief-1').refreshCredential;
    // The device comes back through its refresh credential on node A and renews: R0 → R1.
    const first = await renewalSession(urlA, 'thief-1', r0);
    t.equal(first.code, 0);
    const a1 = await first.request!();
    t.equal(a1.kind, 'accepted');
    first.client!.end(true);
    // It uses R1 on node A: R0 becomes superseded.
    const second = await renewalSession(urlA, 'thief-1', a1.body.refreshCredential as string);
    t.equal(second.code, 0);
    const a2 = await second.request!();
    t.equal(a2.kind, 'accepted');
    second.client!.end(true);
    const live = await connect(urlA, { clientId: 'thief-1', username: 'thief-1', password: a2.body.accessToken as string });
    t.equal(live.code, 0, 'the device lives on node A with its newest token');
    const kicked = closed(live.client!);
    // A copy of R0, stolen earlier, presented on node B.
    const replay = await connect(urlB, { clientId: 'thief-1', username: 'thief-1', password: r0 });
    t.equal(replay.code, 5, 'node B refuses the replay');
    t.ok(Number.isFinite(await closedWithin(kicked)), 'the device\'s session on node A is closed');
    const show = await runCli(['show', 'thief-1', '--json', '--db', db]);
    t.match(JSON.parse(show.stdout), { device: { status: 'revoked' } }, 'revoked in the registry');
    // A CONNECT with a token reads no database: node A refuses it from what the change feed told it.
    t.equal((await connect(urlA, { clientId: 'thief-1', username: 'thief-1', password: a2.body.accessToken as string })).code, 5,
      'node A refuses the device\'s newest access token');
    t.equal((await connect(urlA, { clientId: 'thief-1', username: 'thief-1', password: a2.body.refreshCredential as string })).code, 5,
      'and its newest refresh credential');
  });

  t.test('revoke from the operator\'s host: the devices on both nodes are kicked', async (t) => {
    const a = await connect(urlA, { clientId: 'a-1', username: 'a-1', password: read('a-1').accessToken });
    const b = await connect(urlB, { clientId: 'b-1', username: 'b-1', password: read('b-1').accessToken });
    t.equal(a.code, 0);
    t.equal(b.code, 0);
    await sleep(200);
    const kicks = [closed(a.client!), closed(b.client!)];
    const rev = await runCli(['revoke', 'a-1', 'b-1', '--db', db]);
    t.equal(rev.code, 0, rev.stderr);
    const exitedAt = Date.now();
    const [ka, kb] = await Promise.all(kicks.map((k) => closedWithin(k)));
    t.ok(Number.isFinite(ka!), `kicked on node A (${ka! - exitedAt} ms after the revoke process exited)`);
    t.ok(Number.isFinite(kb!), `kicked on node B (${kb! - exitedAt} ms after the revoke process exited)`);
    for (const [id, url] of [['a-1', urlB], ['b-1', urlA]] as const) {
      t.equal((await connect(url, { clientId: id, username: id, password: read(id).accessToken })).code, 5, `${id} is refused on the other node too`);
    }
  });

  t.test('no password in either node\'s output', async (t) => {
    for (const n of [nodeA, nodeB]) t.notMatch(n.lines().join('\n') + n.stderr(), pg.password);
  });
});
