export { startBroker, type RunningBroker } from './server.js';
export { loadConfig, loadConfigWithSources, validate as validateConfig, DEFAULT_CONFIG, type BrokerConfig, type Weakening, type DeniedPublishPolicy } from './config.js';
export { createLogger, type Logger } from './logger.js';
export { tokenTopics } from './token-topics.js';
