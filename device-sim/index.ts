/**
 * device-sim: a fleet of simulated devices (built on `device/`) that exercises
 * renewal, ACLs, offline recovery and revocation against a running broker and
 * reports whether every invariant held. `credbroker sim` and `npm run demo` are
 * thin shells over `runSimulation`.
 */
export { runSimulation } from './run-simulation.js';
export { Simulation } from './run.js';
export { resolveSimOptions, parseSimFlags, DEFAULT_SIM_OPTIONS, type SimOptions, type SimFlags } from './options.js';
export { evaluateInvariants, type InvariantId, type InvariantResult, type Verdict } from './invariants.js';
export { formatReport, type SimReport } from './report.js';
export { type SimCleanup } from './cleanup.js';
export { checkBrokerListening, checkSameRegistry, type RegistryCheck } from './preflight.js';
export { prepareFleet, SIM_PROFILE, type Fleet } from './fleet.js';
export { FORBIDDEN_FILTERS } from './probes.js';
