import { CONNACK } from '../protocol/connack.js';
import type { DeviceRecord } from './state.js';

/**
 * Names the likely cause when no device got in and the broker answered CONNACK 4
 * ("bad user name or password") to credentials minted moments ago: the broker
 * verifies with another registry's keys. The sim checks the broker's JWKS before
 * it starts; this covers a broker whose ops HTTP port it could not read.
 * @returns the line for the verdict, or null when the refusals say nothing of the kind
 */
export function registryMismatch(devices: readonly DeviceRecord[]): string | null {
  if (devices.some((d) => d.connectMs !== null)) return null;
  const refused = devices.filter((d) => d.unexpectedRefusals.includes(CONNACK.BAD_USERNAME_OR_PASSWORD) || d.connectError === `CONNACK ${CONNACK.BAD_USERNAME_OR_PASSWORD}`);
  if (refused.length === 0) return null;
  return `CONNACK 4 on every freshly minted credential (${refused.length} of ${devices.length} devices refused, none got in): `
    + 'the broker does not trust this registry\'s signing key, so the broker and the sim most likely use different registries; '
    + 'run the sim with --db set to the broker\'s registry (and --broker at its ops HTTP port, so that the sim checks before it starts)';
}
