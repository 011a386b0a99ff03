// `credbroker sim --url A,B` (issue 13): the fleet spread over several brokers.
import t from 'tap';
import { brokerUrls, resolveSimOptions } from '../device-sim/options.js';

t.test('--url takes a comma-separated list; each entry is checked', async (t) => {
  const o = resolveSimOptions({ url: 'mqtt://127.0.0.1:1883, mqtt://127.0.0.1:1884', db: 'x.db' });
  t.same(brokerUrls(o.url), ['mqtt://127.0.0.1:1883', 'mqtt://127.0.0.1:1884']);
  t.same(brokerUrls('mqtt://127.0.0.1:1883'), ['mqtt://127.0.0.1:1883'], 'one URL is a list of one');
  t.throws(() => resolveSimOptions({ url: 'mqtt://127.0.0.1:1883,127.0.0.1:1884', db: 'x.db' }), { message: 'invalid --url "127.0.0.1:1884": expected mqtt://HOST:PORT (or mqtts://, ws://, wss://), several separated by commas' });
  t.throws(() => resolveSimOptions({ url: 'mqtt://127.0.0.1:1883,', db: 'x.db' }), { message: /invalid --url ""/ }, 'an empty entry');
});
