/** Public surface of the ACL module: pure per-device publish/subscribe decisions. */
export type { AclRules, CompiledAcl, CompiledPattern } from './compile.js';
export { AclPatternError, compileAcl, substituteDevice, validatePattern } from './compile.js';
export { mayPublish, mayReceive, maySubscribe, topicMatches } from './match.js';
export { MAX_TOPIC_BYTES, isDollarTopic, isValidTopicFilter, isValidTopicName, splitLevels } from './topic.js';
export { firstReserved, isReservedPattern } from './reserved.js';
export { firstOutside, ungrantable, type Uncovered } from './grant-scope.js';
