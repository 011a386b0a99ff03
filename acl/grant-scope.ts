/**
 * What a grant may hold (SPEC "Grants"): which patterns can be granted at all,
 * and whether a grant stays inside one device's ACL (`--within`).
 */
import { compileAcl, type AclRules } from './compile.js';
import { maySubscribe } from './match.js';
import { isReservedPattern, RESERVED_PATTERN } from './reserved.js';
import { isValidTopicFilter } from './topic.js';

/**
 * Why `pattern` can never be granted, or null when it can: not a topic filter,
 * or a broker topic (reserved.ts); a grant holding `$devices/…` or `$claims/…`
 * could renew a device's token or claim an id.
 */
export function ungrantable(pattern: string): string | null {
  if (!isValidTopicFilter(pattern)) return 'is not a valid MQTT topic filter';
  return isReservedPattern(pattern) ? RESERVED_PATTERN : null;
}

/** A grant's pattern that the device's ACL does not cover, or null when every one is covered. */
export interface Uncovered {
  readonly side: 'pub' | 'sub';
  readonly pattern: string;
}

/**
 * Is every pattern of `grant` a subset of `device` (both `{device}` already
 * substituted)? The relation is the broker's SUBSCRIBE check (`maySubscribe`):
 * a grant pattern is inside when one single pattern of the device's same side
 * covers every topic it could match. Publish patterns are checked against the
 * device's publish patterns the same way.
 */
export function firstOutside(device: AclRules, grant: AclRules): Uncovered | null {
  const pub = compileAcl({ pub: [], sub: device.pub });
  const sub = compileAcl({ pub: [], sub: device.sub });
  for (const pattern of grant.pub) if (!maySubscribe(pub, pattern)) return { side: 'pub', pattern };
  for (const pattern of grant.sub) if (!maySubscribe(sub, pattern)) return { side: 'sub', pattern };
  return null;
}
