import type { BrokerConfig } from '../broker/config.js';
import type { FdLimit } from '../broker/fd-limit.js';
import { unauthenticatedLimits } from '../broker/limits.js';

/**
 * The config a node's primary gives worker `index` of `workers` (issue 23 item
 * 3): the limits that hold for the node as a whole are split between its
 * workers, so that together they never pass the node's setting, and a CONNECT
 * never waits for the primary. Split: `maxConnections`, the unauthenticated
 * sockets in total and per address, and the verification budget (its rate and
 * burst). Each worker gets an equal part, the first ones one more where it does
 * not divide, and never less than 1 of a setting above 0 (a worker with none would refuse every
 * device sent to it): a setting below the number of workers is exceeded, up to
 * one per worker.
 *
 * The price of no round trip: a worker at its share refuses while another may
 * have room. The kernel (SO_REUSEPORT, by a hash of each connection's addresses
 * and ports) or the primary (in turn) spreads connections evenly, so the shares
 * fill evenly. The per-key rate limits are not split: the primary counts
 * them for the node (node-limits.ts).
 *
 * @param fd the node's open-files limit, for `maxUnauthenticated: "auto"`
 */
export function workerShare(config: BrokerConfig, workers: number, index: number, fd: FdLimit | null): BrokerConfig {
  const part = (total: number) => (total <= 0 ? total : Math.max(1, Math.floor(total / workers) + (index < total % workers ? 1 : 0)));
  const { max, perAddress } = unauthenticatedLimits(config, fd);
  return {
    ...config,
    maxConnections: part(config.maxConnections),
    maxUnauthenticated: part(max),
    maxUnauthenticatedPerAddress: part(perAddress),
    verifyBudgetPerSec: config.verifyBudgetPerSec / workers,
    verifyBudgetBurst: part(config.verifyBudgetBurst),
  };
}
