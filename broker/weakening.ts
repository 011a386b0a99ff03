/**
 * Test-only switches that deliberately weaken the broker, so the device
 * simulator can prove that its invariants catch a broken broker, and the bench
 * can measure what a check costs. They are no part of BrokerConfig: no config
 * file, flag or environment variable reaches them, only code that calls
 * `startBroker(config, { weaken })` (tests, bench/lib/). The broker logs a loud
 * warning when one is on.
 */
export interface Weakening {
  readonly skipSubscribeCheck?: boolean;
  readonly skipPublishCheck?: boolean;
  readonly neverExpireSessions?: boolean;
  readonly ignoreRevocations?: boolean;
  /**
   * The registry's change feed is read but never applied: a revocation committed
   * elsewhere does not reach this broker's memory, while the broker still refuses
   * what its memory knows. Holds open the window between the registry saying
   * "revoked" and the broker hearing it, on either engine (SQLite's poll and
   * PostgreSQL's NOTIFY alike), so a test can act inside it.
   */
  readonly ignoreChangeFeed?: boolean;
  /** Every bound in broker/limits.ts off: only for `npm run bench` to measure what the limits cost. */
  readonly noLimits?: boolean;
  /**
   * On a bus, aedes' own takeover: every CONNECT announced to every broker on the bus
   * (cluster/ownership.ts replaces it). Only for `npm run bench`, to show the before and after.
   */
  readonly broadcastTakeover?: boolean;
  /** aedes as published, without broker/aedes-patches/: only for `npm run bench`, to measure what the patches change. */
  readonly unpatchedAedes?: boolean;
}
