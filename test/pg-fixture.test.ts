import t from 'tap';
import pg from 'pg';
import { sharedPostgres } from './helpers/postgres.js';

t.test('the throwaway cluster: a database per test, a password role, an outage and a recovery', async (t) => {
  const cluster = await sharedPostgres();
  const url = await cluster.newDatabase();
  t.match(url, new RegExp(`^postgres://credbroker:${cluster.password}@127\\.0\\.0\\.1:${cluster.port}/`));
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  t.equal((await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u, 'credbroker');
  await c.query('CREATE TABLE x (a int)');
  await c.end();
  const wrong = new pg.Client({ connectionString: url.replace(cluster.password, 'nope') });
  await t.rejects(wrong.connect(), /password authentication failed/, 'the role needs its password over TCP');

  await cluster.stop();
  t.notOk(cluster.running);
  const down = new pg.Client({ connectionString: url });
  await t.rejects(down.connect(), { code: 'ECONNREFUSED' }, 'refused while stopped');
  await cluster.start();
  const again = new pg.Client({ connectionString: url });
  await again.connect();
  t.equal((await again.query('SELECT count(*) FROM x')).rows[0].count, '0', 'same data after the restart');
  await again.end();
});
