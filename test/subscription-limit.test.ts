// SubscriptionLimit on its own (broker/subscription-limit.ts): the cap holds across its one-filter form and
// its Set form, a re-subscribe is always granted, and an UNSUBSCRIBE frees the place.
import t from 'tap';
import type { Client } from 'aedes';
import { SubscriptionLimit } from '../broker/subscription-limit.js';

const client = () => ({}) as Client;

t.test('the cap holds from the first filter on', async (t) => {
  const one = new SubscriptionLimit(1);
  const c = client();
  t.ok(one.admit(c, 'a/#'), 'first filter');
  t.ok(one.admit(c, 'a/#'), 're-subscribe to the held filter');
  t.notOk(one.admit(c, 'b/#'), 'a second filter past a cap of 1');
  one.release(c, ['a/#']);
  t.ok(one.admit(c, 'b/#'), 'after UNSUBSCRIBE, room again');
  t.notOk(new SubscriptionLimit(0).admit(client(), 'a'), 'a cap of 0 grants nothing');
});

t.test('past one filter, counted the same', async (t) => {
  const three = new SubscriptionLimit(3);
  const c = client();
  for (const f of ['a', 'b', 'c']) t.ok(three.admit(c, f), `filter ${f}`);
  t.notOk(three.admit(c, 'd'), 'a fourth past the cap');
  t.ok(three.admit(c, 'b'), 're-subscribe still granted at the cap');
  three.release(c, ['a', 'x']);
  t.ok(three.admit(c, 'd'), 'room after UNSUBSCRIBE');
  t.notOk(three.admit(c, 'e'), 'full again');
  t.ok(three.admit(client(), 'e'), 'another connection counts on its own');
});
