/**
 * Turning a profile's pattern strings into a form the per-message matchers can
 * use without re-parsing. The broker compiles once at CONNECT; the matchers in
 * match.ts then run on every PUBLISH, SUBSCRIBE and forwarded message.
 */
import { isReservedPattern, RESERVED_PATTERN } from './reserved.js';
import { Lru } from '../util/lru.js';
import { isValidTopicFilter, splitLevels } from './topic.js';

/** The raw rule set carried in a device token (already `{device}`-substituted). */
export interface AclRules {
  readonly pub: readonly string[];
  readonly sub: readonly string[];
}

/**
 * One pattern pre-split into levels; `#` / `+` levels are the wildcards, and a
 * null level is the session's device id (DEVICE_LEVEL).
 */
export interface CompiledPattern {
  readonly levels: readonly (string | null)[];
}

/** A level of a template that stands for the device id of the session holding it. */
export const DEVICE_LEVEL = null;

/**
 * An ACL with the device id taken out of its levels: every device of one
 * profile (one set of patterns) shares one, so a connected device does not
 * hold its own copy of the split patterns.
 */
export interface AclTemplate {
  /** Publish patterns with no wildcard and no device level: a topic is allowed by one of these iff it is equal to it. */
  readonly pubExact: ReadonlySet<string>;
  /** Other publish patterns, matched level-wise. */
  readonly pubLevels: readonly CompiledPattern[];
  /** Subscribe patterns; used both for filter coverage and for "may receive topic T". */
  readonly sub: readonly CompiledPattern[];
}

/** A session's ACL: a shared template and the device id its device levels stand for. */
export interface CompiledAcl {
  readonly device: string;
  readonly rules: AclTemplate;
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

/**
 * Templates by their patterns. Bounded: a template dropped from here stays with
 * the sessions that hold it, and the next session of that ACL builds another.
 */
const templates = new Lru<string, AclTemplate>(1024);

/**
 * Pre-split the (already substituted) patterns from a token. A malformed
 * pattern is dropped: it grants nothing, which fails closed without making a
 * single bad entry lock the device out of everything else it holds.
 *
 * With `deviceId`, every level equal to it becomes a device level of a shared
 * template: the ACL decides exactly as the substituted patterns do (the same id
 * goes back in at every such level), while devices of one profile share it.
 */
export function compileAcl(rules: AclRules, deviceId = ''): CompiledAcl {
  const pub: (string | null)[][] = [];
  const sub: (string | null)[][] = [];
  const levelsOf = (p: string) => splitLevels(p).map((l) => (deviceId !== '' && l === deviceId ? DEVICE_LEVEL : l));
  for (const p of rules.pub) if (isValidTopicFilter(p)) pub.push(levelsOf(p));
  for (const p of rules.sub) if (isValidTopicFilter(p)) sub.push(levelsOf(p));
  const key = JSON.stringify([pub, sub]);
  let template = templates.get(key);
  if (template === undefined) templates.set(key, (template = buildTemplate(pub, sub)));
  return { device: deviceId, rules: template };
}

function buildTemplate(pub: readonly (string | null)[][], sub: readonly (string | null)[][]): AclTemplate {
  const pubExact = new Set<string>();
  const pubLevels: CompiledPattern[] = [];
  for (const levels of pub) {
    if (levels.some((l) => l === DEVICE_LEVEL || l === '+' || l === '#')) pubLevels.push({ levels });
    else pubExact.add(levels.join('/'));
  }
  return { pubExact, pubLevels, sub: sub.map((levels) => ({ levels })) };
}
