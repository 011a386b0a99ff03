import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { AggregatorRegistry } from 'prom-client';
import { createLogger, startBroker, type BrokerConfig, type Weakening } from '../broker/index.js';
import { openRegistry } from '../registry/index.js';
import { Bus } from './bus.js';
import { BusKeyring } from './bus-keys.js';
import { isToWorker, type ToPrimary } from './ipc.js';
import { redisTarget } from './redis-options.js';
import { RedisClaimLocks } from './claim-locks.js';
import { workerCount } from './primary.js';
import { SharedLimits } from './shared-limits.js';

/** How long a stopping worker may take to drain before it exits anyway (its primary kills it a little later). */
const STOP_LIMIT_MS = 25_000;

/**
 * One worker of a node (node:cluster): a broker on the bus, sharing the node's
 * listeners with the other workers. The primary serves the node's operations
 * port, so the worker has none of its own: it answers the primary's questions
 * over IPC, and its metrics are read by prom-client's aggregator. Its config
 * carries its share of the node's caps (worker-share.ts); the per-key rate
 * limits it counts with the primary over IPC (shared-limits.ts), never over Redis.
 *
 * Reports `ready` (with its ports) once it listens; stops on the primary's
 * `stop`, on SIGTERM/SIGINT, or when the primary goes away.
 */
export async function runWorker(config: BrokerConfig, index: number, { weaken = {}, reusePort = false }: { weaken?: Weakening; reusePort?: boolean } = {}): Promise<void> {
  const log = createLogger(config.logLevel, undefined, config.logFormat).child({ worker: index });
  const send = (m: ToPrimary): boolean => {
    if (!process.connected) return false;
    // A primary that has just gone fails the write (EPIPE): the 'disconnect' handler stops this worker, no 'error' event.
    process.send!(m, undefined, undefined, () => {});
    return true;
  };
  // Unique per process: aedes keys its brokers, its $SYS topics and its stored packets by it.
  const id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  let stopping = false;
  let stop: () => void = () => process.exit(0); // before the broker runs there is nothing to close
  const onStop = () => { if (!stopping) { stopping = true; stop(); } };
  process.once('SIGTERM', onStop);
  process.once('SIGINT', onStop);
  process.once('disconnect', onStop);

  // The cluster key before the bus: nothing goes on it unsealed. Followed through the broker's registry once it runs.
  const keysFrom = await openRegistry(config.db);
  const keys = await BusKeyring.load(keysFrom).finally(() => keysFrom.close());
  const target = redisTarget(config);
  const bus = await Bus.connect(target, id, log, { broadcastTakeover: !!weaken.broadcastTakeover, maxQueuedMessages: weaken.noLimits ? Infinity : config.maxQueuedMessages, keys });
  // Alone on its node, the worker's own limits are the node's.
  const limits = workerCount(config.workers) > 1 ? new SharedLimits(send) : null;
  const claimLocks = new RedisClaimLocks(target, id, log);
  await claimLocks.ready();
  const broker = await startBroker({ ...config, httpPort: null }, { logger: log, shared: bus.shared, weaken, claimLocks, reusePort, ...(limits ? { limiters: limits.limiters } : {}) });
  await bus.attach(broker);
  keys.follow(broker.context.issuer.reg, (err) => log.error({ event: 'bus.keys_reload_failed', err: err.message }, 'cluster bus keys: reload from the registry failed'));
  // The primary's /metrics asks each worker for this registry; prom-client answers
  // only once an AggregatorRegistry has been made in the worker (it adds its listener then).
  AggregatorRegistry.setRegistries([broker.context.metrics.registry]);
  new AggregatorRegistry();
  stop = () => {
    // A close that hangs (a socket that will not end) must not keep a stopping node alive.
    setTimeout(() => { log.error({ event: 'worker.stop_timeout' }, 'worker did not stop in time: exiting'); process.exit(1); }, STOP_LIMIT_MS).unref();
    keys.close();
    broker.close().then(() => { limits?.close(); return Promise.all([bus.close(), claimLocks.close()]); }).then(() => process.exit(0), (err: Error) => {
      log.error({ event: 'worker.stop_failed', err: err.message }, 'worker did not stop cleanly');
      process.exit(1);
    });
  };
  if (stopping) return stop();
  process.on('message', (m: unknown) => {
    if (!isToWorker(m)) return;
    if (m.credbroker === 'stop') onStop();
    else if (m.credbroker === 'empty') limits?.heard(m);
    else if (m.credbroker === 'ask') void broker.ops(m.method, m.target).then((answer) => send({ credbroker: 'answer', id: m.id, answer }));
  });
  send({ credbroker: 'ready', ports: broker.ports });
}
