export { startBroker, type RunningBroker, type StartOptions, type SharedState } from './server.js';
export type { ClaimLock, ClaimLocks } from './claim-locks.js';
export { KeyedRateLimiter, localLimiters, type LimiterFactory, type LimiterName, type RateLimiter } from './rate-limit.js';
export type { OpsAnswer } from './http.js';
export { consoleMount } from './console-assets.js';
export { loadConfig, loadConfigWithSources, validate as validateConfig, DEFAULT_CONFIG, type BrokerConfig, type DeniedPublishPolicy } from './config.js';
export type { Weakening } from './weakening.js';
export { createLogger, type Logger } from './logger.js';
export { tokenTopics } from '../protocol/renewal.js';
