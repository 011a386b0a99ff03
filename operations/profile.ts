import { AclPatternError, validatePattern } from '../acl/index.js';
import { UsageError } from '../errors/index.js';
import { parseProfileName, type Profile, type Stores } from '../registry/index.js';
import { checkTtl } from '../tokens/index.js';

export interface ProfileChange {
  readonly name: string;
  /** Replaces the publish patterns (kept as they are when omitted on an existing profile). */
  readonly publish?: readonly string[];
  readonly subscribe?: readonly string[];
  /** Token lifetime (ms); default 1 h for a new profile, unchanged for an existing one. */
  readonly tokenTtlMs?: number;
}

export const DEFAULT_PROFILE_TTL_MS = 3_600_000;

/**
 * `credbroker profile set`: creates or updates a profile after checking every
 * pattern (MQTT filter syntax, only the `{device}` variable, no `$` topic) and the lifetime cap.
 * Tokens already issued keep the ACL they were minted with until they are renewed.
 * @throws UsageError `ERR_PROFILE_INVALID` | `ERR_TTL_TOO_LONG`
 */
export async function setProfile(reg: Stores, change: ProfileChange, now = Date.now()): Promise<{ created: boolean; profile: Profile }> {
  const name = parseProfileName(change.name);
  if (change.tokenTtlMs !== undefined) checkTtl(change.tokenTtlMs, await reg.settings.read());
  return reg.transaction(async (tx) => {
    const old = await tx.profiles.get(name);
    const next = {
      name,
      publish: [...(change.publish ?? old?.publish ?? [])],
      subscribe: [...(change.subscribe ?? old?.subscribe ?? [])],
      tokenTtlMs: change.tokenTtlMs ?? old?.tokenTtlMs ?? DEFAULT_PROFILE_TTL_MS,
    };
    // Kept patterns too: one stored before `$` patterns were refused must be replaced, not saved again.
    checkPatterns(name, [...next.publish, ...next.subscribe]);
    if (next.publish.length === 0 && next.subscribe.length === 0) {
      throw new UsageError(`profile "${name}" would grant nothing: give at least one --pub or --sub pattern`, 'ERR_PROFILE_INVALID');
    }
    await tx.profiles.set(next, now);
    await tx.audit.append('cli', old ? 'profile.update' : 'profile.create', null, { profile: name, publish: next.publish, subscribe: next.subscribe, tokenTtlMs: next.tokenTtlMs }, now);
    return { created: !old, profile: await tx.profiles.require(name) };
  });
}

function checkPatterns(name: string, patterns: readonly string[]): void {
  for (const p of patterns) {
    try {
      validatePattern(p);
    } catch (err) {
      if (err instanceof AclPatternError) throw new UsageError(`profile "${name}": ${err.message}`, 'ERR_PROFILE_INVALID');
      throw err;
    }
  }
}
