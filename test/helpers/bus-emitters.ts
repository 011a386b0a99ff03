import type { Test } from 'tap';
import { Redis } from 'ioredis';
import { BusEmitter } from '../../cluster/bus-emitter.js';
import { BusInterest } from '../../cluster/bus-interest.js';
import { unsealedWire } from '../../cluster/bus-wire.js';
import { startRedis } from './redis.js';
import { until } from './wait.js';

/** Two emitters on one real redis-server (unsealed: the seal has its own tests), connected; `conns[0]` is the first one's publishing connection. */
export async function twoEmitters(t: Test): Promise<{ a: BusEmitter; b: BusEmitter; conns: Redis[] }> {
  const redis = await startRedis(t);
  const conns: Redis[] = [];
  const emitter = () => {
    const [pub, sub] = [new Redis(redis.url, { enableAutoPipelining: true }), new Redis(redis.url)];
    conns.push(pub, sub);
    const hooks = { quiet: null, localOnly: () => t.fail('local only'), malformed: () => t.fail('malformed'), closing: () => {} };
    return new BusEmitter(pub, sub, unsealedWire(), hooks, new BusInterest(pub, `broker-${conns.length / 2}`));
  };
  const [a, b] = [emitter(), emitter()];
  t.teardown(() => new Promise<void>((r) => { a.close(() => b.close(r)); }));
  await until('both connected', () => conns.every((c) => c.status === 'ready'));
  return { a, b, conns };
}
