import type { Test } from 'tap';
import type { InvariantId, InvariantResult } from '../../device-sim/index.js';

/** The invariants only a cohort exercises: a run without that cohort reports them skipped. */
export const COHORT_INVARIANTS = {
  offline: ['offline-devices-came-back'],
  revoke: ['revoked-devices-kicked'],
  probe: ['forbidden-publish-disconnects', 'forbidden-subscribe-refused', 'client-id-takeover-refused'],
  nonRenewing: ['no-session-past-expiry'],
} as const satisfies Record<string, readonly InvariantId[]>;

export type Cohort = keyof typeof COHORT_INVARIANTS;

/**
 * Every invariant of a sim run passed. Only the invariants of cohorts the run
 * left out on purpose (`without`) may be skipped, and they must be: a skip is not a pass.
 */
export function everyInvariantPassed(t: Test, invariants: readonly InvariantResult[], without: readonly Cohort[] = []): void {
  const leftOut = new Set<InvariantId>(without.flatMap((c) => COHORT_INVARIANTS[c]));
  t.ok(invariants.length > 0, 'the run reported its invariants');
  for (const i of invariants) {
    t.equal(i.verdict, leftOut.has(i.id) ? 'skipped' : 'pass', `${i.name}: ${i.detail}${i.examples?.length ? ` — ${i.examples.join('; ')}` : ''}`);
  }
}
