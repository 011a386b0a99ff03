import type { InvariantResult } from './invariants.js';
import type { DeviceRecord, Observations } from './state.js';

const MAX_EXAMPLES = 5;

function verdict(id: InvariantResult['id'], name: string, failures: string[], okDetail: string): InvariantResult {
  return failures.length
    ? { id, name, verdict: 'fail', detail: `${failures.length} violation(s); ${okDetail}`, examples: failures.slice(0, MAX_EXAMPLES) }
    : { id, name, verdict: 'pass', detail: okDetail, examples: [] };
}

/** The verdicts of a `--claim` run (none otherwise): the devices' claims, the probes, and the registry's count. */
export function claimInvariants(obs: Observations, devices: DeviceRecord[]): InvariantResult[] {
  const c = obs.claims;
  if (!c) return [];
  return [provisionedOnce(c, devices), rulesHeld(c), cloneRefused(c)];
}

function provisionedOnce(c: NonNullable<Observations['claims']>, devices: DeviceRecord[]): InvariantResult {
  const failures: string[] = [];
  for (const d of devices) {
    if (d.claimed !== 1) failures.push(`${d.id}: ${d.claimed} accepted claims${d.connectError ? ` (${d.connectError})` : ''}`);
  }
  const ours = new Set(devices.map((d) => d.id));
  const reg = c.registry;
  if (!reg) failures.push('the registry could not be read after the run');
  else {
    const strangers = reg.claimed.filter((id) => !ours.has(id));
    if (strangers.length) failures.push(`the registry holds ${strangers.length} device(s) claimed that are not the fleet's: ${strangers.slice(0, 3).join(', ')}`);
    const missing = devices.filter((d) => d.claimed > 0 && !reg.claimed.includes(d.id));
    if (missing.length) failures.push(`${missing.length} device(s) got credentials the registry does not list as claimed: ${missing.slice(0, 3).map((d) => d.id).join(', ')}`);
  }
  const once = devices.filter((d) => d.claimed === 1).length;
  return verdict('claimed-devices-provisioned-once', 'every claimed device provisioned exactly once', failures,
    `${once}/${devices.length} devices claimed exactly once; the registry lists ${reg?.used ?? '?'} device(s) provisioned through claim ${c.name}`);
}

/** How a probe records a claim CONNECT refused as exhausted (claims.ts). */
const EXHAUSTED_AT_CONNECT = 'CONNACK 5';

function rulesHeld(c: NonNullable<Observations['claims']>): InvariantResult {
  const failures: string[] = [];
  // A claim whose quota is used up is refused at CONNECT (CONNACK 5), before any id rule is asked.
  const exhausted = c.overQuota !== null && c.overQuota.skipped === null;
  const outsideOk = c.outside === 'id_not_allowed' || (exhausted && c.outside === EXHAUSTED_AT_CONNECT);
  if (!outsideOk) failures.push(`a claim outside the id pattern got ${c.outside ?? 'no answer'} (expected id_not_allowed${exhausted ? `, or ${EXHAUSTED_AT_CONNECT} with the quota used up` : ''})`);
  if (exhausted && c.overQuota!.code !== 'quota_exhausted' && c.overQuota!.code !== EXHAUSTED_AT_CONNECT) failures.push(`a claim over the quota got ${c.overQuota!.code} (expected quota_exhausted or ${EXHAUSTED_AT_CONNECT})`);
  if (c.registry && c.registry.used > c.quota) failures.push(`${c.registry.used} devices provisioned through a claim with a quota of ${c.quota}`);
  return verdict('no-claim-outside-rules', 'no claim over quota or outside the pattern/allow-list succeeded', failures,
    `outside the pattern: ${c.outside}; over the quota: ${c.overQuota?.skipped ?? c.overQuota?.code ?? 'not tried'}; ${c.registry?.used ?? '?'}/${c.quota} of the quota used`);
}

function cloneRefused(c: NonNullable<Observations['claims']>): InvariantResult {
  const id = 'cloned-claim-cannot-take-id';
  const name = 'a cloned claim could not take an existing id';
  const k = c.clone;
  if (!k || k.skipped) return { id, name, verdict: 'skipped', detail: k?.skipped ?? 'not attempted', examples: [] };
  const failures: string[] = [];
  if (k.connack !== 5) failures.push(`claim CONNECT with ${k.victim}'s id got CONNACK ${k.connack} (expected 5)${k.connack === 0 ? ': CLAIM SESSION ACCEPTED' : ''}`);
  if (k.victimKicked) failures.push(`${k.victim} lost its session to the claim CONNECT`);
  return verdict(id, name, failures, `claim CONNECT as connected device ${k.victim}: CONNACK ${k.connack}; its session ${k.victimKicked ? 'was taken over' : 'stayed up'}`);
}
