import { claimOnce, type ClaimOptions, type ClaimResult, type ClaimSource } from '../device/index.js';
import type { Issuer } from '../provisioning/index.js';
import type { FailedAuthBudget } from './budget.js';
import type { SimClaim } from './fleet.js';
import { connectOnce } from './mqtt-once.js';

/** What a `--claim` run observed beyond the devices' own records: the raw material of the claim verdicts. */
export interface ClaimObservations {
  readonly name: string;
  readonly quota: number;
  /** The claim of an id outside the pattern: its rejection code (null: not attempted). */
  outside: string | null;
  /** The claim of one id over the quota, once every device had claimed: its rejection code, `accepted`, or why not attempted. */
  overQuota: { code: string | null; skipped: string | null } | null;
  /** A claim CONNECT with the claim credential and a connected device's id: its CONNACK code, and whether that device lost its session. */
  clone: { victim: string; connack: number | null; victimKicked: boolean; skipped: string | null } | null;
  /** From the registry after the run: devices provisioned through the claim. */
  registry: { used: number; claimed: string[] } | null;
}

export function newClaimObservations(claim: SimClaim): ClaimObservations {
  return { name: claim.name, quota: claim.quota, outside: null, overQuota: null, clone: null, registry: null };
}

/** What a device of the run claims with (its URL comes from the fleet). */
export const claimSourceOf = (claim: SimClaim, deviceId: string): ClaimSource & ClaimOptions => ({ deviceId, name: claim.name, credential: claim.credential, brokerUrl: null });

/** How many times a raw claim (a non-renewing device's) is tried while the broker answers "later" (rate_limited, unavailable). */
const RAW_CLAIM_TRIES = 20;

/** A claim by plain MQTT.js (no DeviceClient), retried while the answer is "later". */
export async function claimRaw(url: string, claim: SimClaim, deviceId: string): Promise<ClaimResult> {
  let r: ClaimResult = { outcome: 'retry', connack: null, code: null, message: 'not tried' };
  for (let k = 0; k < RAW_CLAIM_TRIES && r.outcome === 'retry'; k++) {
    if (k > 0) await new Promise((res) => setTimeout(res, Math.min(5000, 250 * 2 ** k) * (0.5 + Math.random() / 2)));
    r = await claimOnce(url, claimSourceOf(claim, deviceId));
  }
  return r;
}

/**
 * The claims that must be refused: an id outside the claim's pattern
 * (`id_not_allowed`), one id over the quota once every device has claimed
 * (`quota_exhausted`), and a cloned claim taking a connected device's id
 * (CONNACK 5, the device keeps its session). The clone costs a failed login
 * from this address: paced by the failed-auth budget like the other probes.
 */
export async function runClaimProbes(o: {
  claim: SimClaim; url: string; obs: ClaimObservations; budget: FailedAuthBudget;
  claimedCount: number; victim: { id: string; connected: () => boolean } | null;
}): Promise<void> {
  const { claim, obs } = o;
  const outside = await claimRaw(o.url, claim, claim.outsideId);
  obs.outside = outside.outcome === 'claimed' ? 'accepted' : outside.code ?? `CONNACK ${outside.connack}`;
  if (o.claimedCount < claim.quota) {
    obs.overQuota = { code: null, skipped: `only ${o.claimedCount} of ${claim.quota} devices claimed: the quota was not reached` };
  } else {
    const over = await claimRaw(o.url, claim, claim.overQuotaId);
    obs.overQuota = { code: over.outcome === 'claimed' ? 'accepted' : over.code ?? `CONNACK ${over.connack}`, skipped: null };
  }
  if (!o.victim) {
    obs.clone = { victim: '-', connack: null, victimKicked: false, skipped: 'no connected device to aim at' };
    return;
  }
  const victim = o.victim;
  const res = await o.budget.run(1, () => connectOnce(o.url, { clientId: victim.id, username: `claim:${claim.name}`, password: claim.credential }, 5000));
  if (res === null) {
    obs.clone = { victim: victim.id, connack: null, victimKicked: false, skipped: 'failed-auth budget' };
    return;
  }
  res.client?.end(true);
  // A takeover would close the victim's connection at once.
  await new Promise((r) => setTimeout(r, 300));
  obs.clone = { victim: victim.id, connack: res.code, victimKicked: !victim.connected(), skipped: null };
}

/** After the run, before the clean-up: what the registry says the claim provisioned. */
export async function claimRegistryFacts(issuer: Issuer, obs: ClaimObservations): Promise<void> {
  const reg = issuer.reg;
  obs.registry = { used: await reg.claims.used(obs.name), claimed: (await reg.claims.devices(obs.name, obs.quota + 10)).map((d) => d.deviceId) };
}
