import type { MqttClient } from 'mqtt';
import { DeviceError } from './errors.js';
import type { PublishRequest } from './renewal.js';

/** One MQTT connection of the device client (token or refresh session). */
export interface Conn {
  client: MqttClient;
  /** Resolves (with a reason, never a secret) when the connection has closed. */
  closed: Promise<string>;
}

/** Subscribes and returns the granted QoS; 128 (0x80) when refused, which MQTT.js would otherwise report as an error. */
export function subscribeGranted(client: MqttClient, filter: string, qos: 0 | 1): Promise<number> {
  return new Promise((resolve, reject) => {
    client.subscribe(filter, { qos }, (err, granted) => {
      // MQTT.js reports a 0x80 SUBACK as an error carrying the SUBACK packet.
      const code = (err as (Error & { packet?: { granted?: unknown[] } }) | null)?.packet?.granted?.[0];
      if (err && typeof code === 'number' && (code & 0x80) !== 0) return resolve(128);
      if (err) return reject(new DeviceError('ERR_DISCONNECTED', `subscribe failed: ${err.message}`));
      resolve(granted?.[0]?.qos ?? 128);
    });
  });
}

/** Subscribes the device's token topics (QoS 1): no session is of use without them. */
export async function subscribeTokenTopics(conn: Conn, filter: string): Promise<void> {
  if ((await whileOpen(conn, subscribeGranted(conn.client, filter, 1))) === 128) throw new DeviceError('ERR_SUBSCRIBE_REFUSED', 'the broker refused the token topics');
}

/** Renewal requests go out at QoS 1 on this connection. */
export function publishOn(conn: Conn): PublishRequest {
  return (topic, payload, sent) => conn.client.publish(topic, payload, { qos: 1 }, sent);
}

/** Rejects with ERR_DISCONNECTED if the connection closes before `p` settles (MQTT.js may never call back then). */
export function whileOpen<T>(conn: Conn, p: Promise<T>): Promise<T> {
  return Promise.race([p, conn.closed.then((): never => { throw new DeviceError('ERR_DISCONNECTED', 'connection closed'); })]);
}

/** Ends an MQTT.js client: gracefully (DISCONNECT) unless `force`; never waits more than 2 s. */
export function endClient(client: MqttClient, force: boolean): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { client.end(true); resolve(); }, 2000);
    client.end(force, {}, () => { clearTimeout(t); resolve(); });
  });
}
