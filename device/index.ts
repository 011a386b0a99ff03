/**
 * credbroker's device-side library: what a device needs to connect with its
 * short-lived access token, renew it in-band, and come back through its
 * refresh credential after a long time offline.
 *
 * @example
 * import { DeviceClient } from './device/index.js';
 * const device = await DeviceClient.fromFile('/etc/credbroker/dev-0042.json');
 * device.on('renewed', (ev) => console.log('token good until', ev.expiresAt));
 * await device.start();
 * await device.publish(`devices/${device.deviceId}/telemetry`, JSON.stringify({ t: 21.5 }), { qos: 1 });
 */
export { DeviceClient, type DeviceClientOptions, type DeviceClientEvents } from './client.js';
export type { RenewedEvent } from './renewal.js';
export { Backoff, backoffCapMs, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { renewalDelayMs, tokenLifetimeMs, DEFAULT_RENEW_AT_FRACTION, DEFAULT_JITTER_FRACTION, type ScheduleInput } from './renewal-schedule.js';
export { loadCredentials, saveCredentials, checkCredentials, type DeviceCredentials } from './credentials-store.js';
export { DeviceError } from './errors.js';
export { claimOnce, claimSource, type ClaimOptions, type ClaimSource, type ClaimResult } from './claim.js';
