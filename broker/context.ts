import type { Aedes } from 'aedes';
import type { Issuer } from '../provisioning/index.js';
import type { AuditBuffer } from './audit-buffer.js';
import type { AuditTally } from './audit-tally.js';
import type { ClaimLocks } from './claim-locks.js';
import type { BrokerConfig } from './config.js';
import type { Logger } from './logger.js';
import type { BrokerMetrics } from './metrics.js';
import type { RateLimiter } from './rate-limit.js';
import type { RefusalLog } from './refusal-log.js';
import type { GrantRetainedExpiry } from './grant-retained.js';
import type { RetainedLedger } from './retained.js';
import type { RevocationState } from './revocation-state.js';
import type { DeviceKicks, Sessions } from './sessions.js';
import type { SubscriptionLimit } from './subscription-limit.js';
import type { VerifiedTokens } from './verified-tokens.js';
import type { VerifyBudget } from './verify-budget.js';
import type { Weakening } from './weakening.js';

/** Everything the aedes hooks share; built once by `startBroker`. */
export interface BrokerContext {
  readonly config: BrokerConfig;
  /** Test-only (startBroker's `weaken` option); empty in every broker that `serve` starts. */
  readonly weaken: Weakening;
  /** Replaced (never mutated) when the keys rotate. */
  issuer: Issuer;
  readonly revocation: RevocationState;
  readonly sessions: Sessions;
  readonly metrics: BrokerMetrics;
  readonly log: Logger;
  readonly audit: AuditBuffer;
  /** Floods of refused logins and renewals: counted, one summary row per address (device) and window. */
  readonly tally: AuditTally;
  /** Per-process, or shared by the workers on a bus (startBroker's `limiters` option). */
  readonly authFailures: RateLimiter;
  readonly deviceConnects: RateLimiter;
  readonly renewals: RateLimiter;
  /**
   * The theft response's kick. Local: the revocation it follows is in the registry,
   * whose change feed every worker's and node's watcher follows and kicks from.
   */
  readonly kicks: DeviceKicks;
  /** Claim requests per claim name, and per address (claim.ts). */
  readonly claimRequests: RateLimiter;
  readonly claimAddresses: RateLimiter;
  /** Accepted claim CONNECTs per claim name, and per address (claim-session.ts): each holds a session for up to 60 s. */
  readonly claimConnects: RateLimiter;
  readonly claimConnectAddresses: RateLimiter;
  /** One claim session per device id, in this process or across the bus (startBroker's `claimLocks` option). */
  readonly claimLocks: ClaimLocks;
  /** False while a shared session store is unreachable (startBroker's `shared`): a persistent session cannot be read then. */
  readonly sessionStoreUp: () => boolean;
  readonly subscriptions: SubscriptionLimit;
  /** Who owns each retained message: the per-device caps, and clearing a revoked device's. */
  readonly retained: RetainedLedger;
  /** Clears a grant's retained messages when it expires. */
  readonly grantRetained: GrantRetainedExpiry;
  /** Credential checks for addresses that failed recently, node-wide. */
  readonly verifyBudget: VerifyBudget;
  /** Accepted access tokens, so that a reconnect with the same token skips the signature check. */
  readonly verifiedTokens: VerifiedTokens;
  readonly refusals: RefusalLog;
  aedes: Aedes | null;
}
