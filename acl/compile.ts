/**
 * Turning a profile's pattern strings into a form the per-message matchers can
 * use without re-parsing. The broker compiles once at CONNECT; the matchers in
 * match.ts then run on every PUBLISH, SUBSCRIBE and forwarded message.
 */
import { isReservedPattern, RESERVED_PATTERN } from './reserved.js';
import { isValidTopicFilter, splitLevels } from './topic.js';

/** The raw rule set carried in a device token (already `{device}`-substituted). */
export interface AclRules {
  readonly pub: readonly string[];
  readonly sub: readonly string[];
}

/** One pattern pre-split into levels; `#` / `+` levels are the wildcards. */
export interface CompiledPattern {
  readonly source: string;
  readonly levels: readonly string[];
}

export interface CompiledAcl {
  /** Publish patterns with no wildcard: a topic is allowed by one of these iff it is equal to it. */
  readonly pubExact: ReadonlySet<string>;
  /** Publish patterns containing `+` or `#`, matched level-wise. */
  readonly pubWild: readonly CompiledPattern[];
  /** Subscribe patterns; used both for filter coverage and for "may receive topic T". */
  readonly sub: readonly CompiledPattern[];
}

/** Thrown for a profile pattern that can never be a sound ACL entry. */
export class AclPatternError extends Error {
  readonly code = 'ERR_ACL_PATTERN';
  constructor(message: string) {
    super(message);
    this.name = 'AclPatternError';
  }
}

const DEVICE_VAR = '{device}';
const DEVICE_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
/** Stand-in id for syntax-checking a pattern before any real device is known; any valid id has the same effect. */
const PLACEHOLDER_DEVICE = 'x';

/**
 * Replace every `{device}` with the device id.
 *
 * The id is re-checked here even though registration validates it: an id
 * containing `/`, `+` or `#` would silently widen the pattern (e.g. `a/#`
 * giving `devices/a/#/...`), so an unsafe id throws instead. split/join is used
 * rather than String#replaceAll because a string replacement there still
 * interprets `$&`-style sequences.
 */
export function substituteDevice(pattern: string, deviceId: string): string {
  if (!DEVICE_ID_RE.test(deviceId)) {
    throw new AclPatternError(`device id ${JSON.stringify(deviceId)} is not safe to substitute into an ACL pattern`);
  }
  return pattern.split(DEVICE_VAR).join(deviceId);
}

/**
 * Check a profile or grant pattern (before substitution). Only `{device}` is a
 * known variable; any other brace, matched or stray (`{devcie}`, `{device`), is
 * refused so a typo cannot turn into a literal that quietly grants nothing -
 * or, worse, something unintended. A pattern that begins with `$` is refused
 * (reserved.ts).
 */
export function validatePattern(pattern: string): void {
  const unknown = /\{[^{}]*\}/.exec(pattern.split(DEVICE_VAR).join(''));
  if (unknown !== null) {
    throw new AclPatternError(`unknown variable ${unknown[0]} in ACL pattern ${JSON.stringify(pattern)}`);
  }
  const substituted = pattern.split(DEVICE_VAR).join(PLACEHOLDER_DEVICE);
  if (substituted.includes('{') || substituted.includes('}')) {
    throw new AclPatternError(`stray brace in ACL pattern ${JSON.stringify(pattern)}`);
  }
  if (!isValidTopicFilter(substituted)) {
    throw new AclPatternError(`ACL pattern ${JSON.stringify(pattern)} is not a valid MQTT topic filter`);
  }
  if (isReservedPattern(pattern)) throw new AclPatternError(`ACL pattern ${JSON.stringify(pattern)} ${RESERVED_PATTERN}`);
}

function hasWildcard(pattern: string): boolean {
  return pattern.includes('+') || pattern.includes('#');
}

function compilePattern(source: string): CompiledPattern {
  return { source, levels: splitLevels(source) };
}

/**
 * Pre-split the (already substituted) patterns from a token. A malformed
 * pattern is dropped: it grants nothing, which fails closed without making a
 * single bad entry lock the device out of everything else it holds.
 */
export function compileAcl(rules: AclRules): CompiledAcl {
  const pubExact = new Set<string>();
  const pubWild: CompiledPattern[] = [];
  const sub: CompiledPattern[] = [];
  for (const p of rules.pub) {
    if (!isValidTopicFilter(p)) continue;
    if (hasWildcard(p)) pubWild.push(compilePattern(p));
    else pubExact.add(p);
  }
  for (const p of rules.sub) {
    if (!isValidTopicFilter(p)) continue;
    sub.push(compilePattern(p));
  }
  return { pubExact, pubWild, sub };
}
