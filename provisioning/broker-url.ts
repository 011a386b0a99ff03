import { UsageError } from '../errors/index.js';

/** Default `brokerUrl` written into credentials files (`--broker-url`, env CREDBROKER_BROKER_URL). */
export const DEFAULT_BROKER_URL = 'mqtt://localhost:1883';

const SCHEMES = new Set(['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ssl:', 'ws:', 'wss:']);

/**
 * Checks the broker address a device will be told to connect to: an URL with an
 * MQTT.js scheme (mqtt, mqtts, tcp, tls, ssl, ws, wss), a host, and no user
 * name or password (credentials go in the file's own fields, never in the URL).
 * @throws UsageError
 */
export function parseBrokerUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`invalid broker URL "${text.slice(0, 80)}": use e.g. mqtts://broker.example.com:8883`);
  }
  if (!SCHEMES.has(url.protocol)) throw new UsageError(`invalid broker URL "${text.slice(0, 80)}": scheme must be one of ${[...SCHEMES].map((s) => s.slice(0, -1)).join(', ')}`);
  if (!url.hostname) throw new UsageError(`invalid broker URL "${text.slice(0, 80)}": it has no host`);
  if (url.username || url.password) throw new UsageError('invalid broker URL: it must not contain a user name or password');
  return text;
}
