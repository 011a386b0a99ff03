/**
 * MQTT topic-name and topic-filter syntax checks (MQTT 3.1.1 §4.7 / MQTT 5 §4.7).
 *
 * These are the gatekeepers in front of the ACL matchers: the matchers assume
 * well-formed input, so anything malformed is refused here rather than being
 * interpreted in some surprising (and possibly over-permissive) way.
 */

/** MQTT strings carry a 2-byte length prefix, so a topic can be at most 65535 UTF-8 bytes. */
export const MAX_TOPIC_BYTES = 65535;

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const NUL = 0x00;

/**
 * Byte-length bound check without encoding in the common case: a UTF-16 code
 * unit is 1..3 UTF-8 bytes (a surrogate pair is 2 units -> 4 bytes), so only
 * strings in the ambiguous middle band need an actual byte count.
 */
function fitsMqttLength(s: string): boolean {
  if (s.length > MAX_TOPIC_BYTES) return false;
  if (s.length * 3 <= MAX_TOPIC_BYTES) return true;
  return Buffer.byteLength(s, 'utf8') <= MAX_TOPIC_BYTES;
}

/**
 * A topic name (what a PUBLISH carries): non-empty, no wildcards, no NUL,
 * at most 65535 bytes. Empty levels (`a//b`, `/a`, `a/`) are legal.
 */
export function isValidTopicName(t: string): boolean {
  if (t.length === 0 || !fitsMqttLength(t)) return false;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c === PLUS || c === HASH || c === NUL) return false;
  }
  return true;
}

/**
 * A topic filter (what a SUBSCRIBE carries): non-empty, no NUL, at most 65535
 * bytes, `+` only as a whole level, `#` only as a whole level and only the
 * last one. Empty levels are legal and are plain literals.
 */
export function isValidTopicFilter(f: string): boolean {
  if (f.length === 0 || !fitsMqttLength(f)) return false;
  const last = f.length - 1;
  for (let i = 0; i < f.length; i++) {
    const c = f.charCodeAt(i);
    if (c === NUL) return false;
    if (c === PLUS || c === HASH) {
      // Must occupy a whole level: preceded by start or '/', followed by end or '/'.
      if (i > 0 && f.charCodeAt(i - 1) !== SLASH) return false;
      if (i < last && f.charCodeAt(i + 1) !== SLASH) return false;
      // '#' must additionally be the final level.
      if (c === HASH && i !== last) return false;
    }
  }
  return true;
}

/** Split on '/' keeping empty levels (`'/a/'` -> `['', 'a', '']`), as MQTT requires. */
export function splitLevels(topic: string): string[] {
  return topic.split('/');
}

/** True if the first level starts with `$`; MQTT wildcards at level 0 never match such topics. */
export function isDollarTopic(topic: string): boolean {
  return topic.charCodeAt(0) === 0x24;
}
