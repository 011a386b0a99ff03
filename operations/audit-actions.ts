/**
 * The actions credbroker writes to the audit log, for `audit --action`'s "did you
 * mean": a filter on an action nothing writes would otherwise print "0 events" as if
 * the fleet were quiet. Actions the broker tallies also have a `<action>.summary` row.
 */
const WRITTEN = [
  'audit.suppressed', 'batch.provision',
  'claim.create', 'claim.extend', 'claim.revoke',
  'device.delete', 'device.move', 'device.provision', 'device.reissue', 'device.restore', 'device.revoke',
  'grant.connect', 'grant.issue', 'grant.kick', 'grant.revoke',
  'keys.rotate', 'profile.create', 'profile.delete', 'profile.update', 'registry.copy',
  'security.refresh_replay', 'simulation.cleanup',
  'token.issue', 'token.renew', 'token.renew_abuse', 'token.renew_refresh', 'token.revoke',
] as const;
const TALLIED = ['auth.refused', 'claim.connect', 'claim.rejected', 'grant.publish_denied', 'grant.subscribe_denied', 'token.renew_rejected'] as const;

export const AUDIT_ACTIONS: readonly string[] = [...WRITTEN, ...TALLIED, ...TALLIED.map((a) => `${a}.summary`)].sort();
