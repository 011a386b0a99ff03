/**
 * The one rule on `$` patterns (SPEC "ACLs", "Grants"): every topic whose first
 * level starts with `$` belongs to the broker (`$devices/…` carries renewal
 * answers, `$claims/…` claim answers, `$SYS` its status), so no profile, grant
 * or token pattern may begin with `$`. Refusing the leading `$` is enough: `+`
 * and `#` at the first level never match `$` topics (match.ts), and `{device}`
 * cannot put a `$` there, since no device id holds one (compile.ts).
 */
import type { AclRules } from './compile.js';

/** Why a reserved pattern is refused, after the pattern: `"$SYS/#" is a broker topic (…)`. */
export const RESERVED_PATTERN = 'is a broker topic ($devices/…, $claims/…, $SYS and every other $ topic are never in a profile, grant or token)';

export function isReservedPattern(pattern: string): boolean {
  return pattern.startsWith('$');
}

/** The first pattern of `acl` that begins with `$`, or null. */
export function firstReserved(acl: AclRules): string | null {
  return acl.pub.find(isReservedPattern) ?? acl.sub.find(isReservedPattern) ?? null;
}
