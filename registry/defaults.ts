import type { ProfileName } from './ids.js';
import type { ProfileInput, Settings } from './types.js';

/** Settings of a registry created without `init` options; every engine seeds these. */
export const DEFAULT_SETTINGS: Settings = {
  issuer: 'urn:credbroker',
  audience: 'credbroker-mqtt',
  alg: 'ES256',
  maxTokenTtlMs: 24 * 3_600_000,
  credentialTtlMs: 365 * 86_400_000,
  maxGrantTtlMs: 24 * 3_600_000,
};

/** The profiles seeded on first use (SPEC "ACLs"). */
export const DEFAULT_PROFILES: readonly ProfileInput[] = [
  { name: 'sensor' as ProfileName, publish: ['devices/{device}/telemetry', 'devices/{device}/events/#'], subscribe: ['devices/{device}/commands/#'], tokenTtlMs: 3_600_000 },
  { name: 'observer' as ProfileName, publish: ['devices/+/commands/#'], subscribe: ['devices/#'], tokenTtlMs: 3_600_000 },
];

/** The prefix of the settings rows that hold secrets (`readSecret`): never part of the settings read. */
export const SECRET = 'secret:';
