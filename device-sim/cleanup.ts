import { isCredbrokerError } from '../errors/index.js';
import { deleteProfile, removeSimulationClaim, removeSimulationDevices } from '../operations/index.js';
import { SIM_PROFILE, type Fleet } from './fleet.js';

/** What the run left in the registry: `--json` prints it as the report's `cleanup`. */
export interface SimCleanup {
  /** Simulation devices (the observer included) removed from the registry. */
  readonly removedDevices: number;
  /** The sim-sensor profile was removed (it stays while another run's devices use it). */
  readonly profileRemoved: boolean;
  /** `--keep`: nothing was removed. */
  readonly kept: boolean;
  /** One line for the report. */
  readonly detail: string;
}

/**
 * Removes what this run put in the registry — its devices and observer, then the
 * sim-sensor profile when no device uses it any more — unless `keep`. A sim run
 * against a production registry must leave it as it found it.
 */
export async function cleanUpFleet(fleet: Fleet, keep: boolean, provisionedProfile: boolean): Promise<SimCleanup> {
  const reg = fleet.issuer?.reg;
  const n = fleet.provisionedIds.length;
  if (!reg || n === 0) return { removedDevices: 0, profileRemoved: false, kept: keep, detail: 'nothing provisioned in the registry' };
  if (keep) {
    return { removedDevices: 0, profileRemoved: false, kept: true, detail: `--keep: ${n} simulation device(s) stay in the registry (listed with "simulation": true by credbroker devices --json)` };
  }
  const removed = (await removeSimulationDevices(reg, fleet.provisionedIds)).length;
  // The claim first: a profile a claim provisions under cannot be deleted.
  if (fleet.claim) await removeSimulationClaim(reg, fleet.claim.name);
  let profileRemoved = false;
  if (provisionedProfile) {
    try {
      await deleteProfile(reg, SIM_PROFILE);
      profileRemoved = true;
    } catch (err) {
      // Another run's devices still use it (or it is gone already): that run removes it.
      if (!isCredbrokerError(err) || (err.code !== 'ERR_PROFILE_IN_USE' && err.code !== 'ERR_PROFILE_NOT_FOUND')) throw err;
    }
  }
  return {
    removedDevices: removed, profileRemoved, kept: false,
    detail: `removed ${removed} simulation device(s)${fleet.claim ? ` and the claim ${fleet.claim.name}` : ''}${provisionedProfile ? (profileRemoved ? ` and the ${SIM_PROFILE} profile` : `; the ${SIM_PROFILE} profile stays (another run uses it)`) : ''} (--keep keeps them)`,
  };
}
