/**
 * The ACL decisions. These run on every PUBLISH / SUBSCRIBE and inside aedes'
 * synchronous authorizeForward, so topic matching walks the topic string with
 * a cursor instead of splitting it (no per-message allocation).
 */
import type { CompiledAcl, CompiledPattern } from './compile.js';
import { isDollarTopic, isValidTopicFilter, isValidTopicName, splitLevels } from './topic.js';

/**
 * MQTT match of pre-split filter levels against a (valid) topic name.
 * `#` matches the remainder including zero levels (`a/#` matches `a`); `+`
 * matches exactly one level, empty included; a wildcard first level never
 * matches a topic whose first level starts with `$`.
 */
function matchLevels(levels: readonly (string | null)[], topic: string, device: string): boolean {
  const first = levels[0];
  if ((first === '#' || first === '+') && isDollarTopic(topic)) return false;
  let cursor = 0; // start of the current topic level; > topic.length once all levels are consumed
  for (let i = 0; i < levels.length; i++) {
    const p = levels[i] ?? device;
    if (p === '#') return true;
    if (cursor > topic.length) return false; // topic has fewer levels than the filter
    let end = topic.indexOf('/', cursor);
    if (end === -1) end = topic.length;
    if (p !== '+') {
      if (p.length !== end - cursor || !topic.startsWith(p, cursor)) return false;
    }
    cursor = end + 1;
  }
  return cursor > topic.length; // every topic level consumed
}

function anyMatches(patterns: readonly CompiledPattern[], topic: string, device: string): boolean {
  for (const p of patterns) {
    if (matchLevels(p.levels, topic, device)) return true;
  }
  return false;
}

/** General MQTT filter matching; false for a malformed filter or topic name. */
export function topicMatches(pattern: string, topic: string): boolean {
  if (!isValidTopicFilter(pattern) || !isValidTopicName(topic)) return false;
  return matchLevels(splitLevels(pattern), topic, '');
}

/**
 * May the device publish to `topic`? Wildcard/empty/NUL topics are refused,
 * and `$SYS` is refused unconditionally: broker status topics must never be
 * forgeable by a device, whatever a profile (mis)says.
 */
export function mayPublish(acl: CompiledAcl, topic: string): boolean {
  if (!isValidTopicName(topic) || topic.startsWith('$SYS')) return false;
  if (acl.rules.pubExact.has(topic)) return true;
  return anyMatches(acl.rules.pubLevels, topic, acl.device);
}

/**
 * May a message on `topic` be delivered to the device? (For authorizeForward:
 * a defence in depth check that the topic lies inside its subscribe patterns.)
 */
export function mayReceive(acl: CompiledAcl, topic: string): boolean {
  if (!isValidTopicName(topic)) return false;
  return anyMatches(acl.rules.sub, topic, acl.device);
}

/**
 * Does pattern P cover filter F, i.e. is every topic matched by F matched by P?
 * Level-wise: P `#` covers any remainder (zero levels included); P `+` covers a
 * literal or `+`; a P literal covers only the same literal; F `#` needs a P `#`
 * at the same or an earlier position; F `+` needs P `+` or `#`. At level 0, a
 * literal `$...` in F is covered only by the same literal, since P's
 * wildcards cannot match `$` topics there.
 */
function covers(p: readonly (string | null)[], f: readonly string[], device: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const pl = p[i] ?? device;
    if (pl === '#') {
      // At level 0 a P '#' cannot match `$` topics, so it cannot cover a `$...` literal.
      return !(i === 0 && f[0] !== undefined && f[0].startsWith('$'));
    }
    const fl = f[i];
    if (fl === undefined) return false; // F's topics end here, P demands another level
    if (fl === '#') return false; // F may match the parent or any depth; only a P '#' covers that
    if (pl === '+') {
      if (i === 0 && fl !== '+' && fl.startsWith('$')) return false;
      continue;
    }
    if (fl === '+' || pl !== fl) return false;
  }
  return f.length === p.length;
}

/**
 * May the device subscribe to `filter`? Allowed iff one single subscribe
 * pattern covers the filter.
 *
 * Deliberately conservative: a filter covered only by a union of several
 * patterns together (e.g. `x/#`, whose topics are split across patterns `x`
 * and `x/+/#`) is refused; unions are not merged. Single-pattern coverage is
 * sound (never over-permissive) and cheap. For the same reason filter `#` is
 * not recognised as equivalent to pattern `+/#`.
 *
 * `$share/...` shared subscriptions are refused: aedes has no shared
 * subscription support, so the filter would be treated as a literal `$share`
 * topic tree and the grant would not mean what it appears to.
 */
export function maySubscribe(acl: CompiledAcl, filter: string): boolean {
  if (!isValidTopicFilter(filter)) return false;
  if (filter === '$share' || filter.startsWith('$share/')) return false;
  const f = splitLevels(filter);
  for (const p of acl.rules.sub) {
    if (covers(p.levels, f, acl.device)) return true;
  }
  return false;
}
