import type { DeviceClient } from '../device/index.js';
import type { FailedAuthBudget } from './budget.js';
import { connectOnce } from './mqtt-once.js';
import type { ProbeRecord } from './state.js';

/** Filters a sensor device must be refused (SPEC "ACLs"): each could match other devices' topics. */
export const FORBIDDEN_FILTERS = ['#', 'devices/+/telemetry', 'devices/#'] as const;

export interface ProbeContext {
  readonly client: DeviceClient;
  readonly record: ProbeRecord;
  readonly url: string;
  readonly budget: FailedAuthBudget;
  onSubscribeDenied(): void;
}

/**
 * One device's ACL probes, in this order:
 * 1. SUBSCRIBE its own `devices/<id>/commands/#` (positive control: must be granted),
 *    then `#`, `devices/+/telemetry`, `devices/#` — each must get SUBACK 0x80;
 * 2. a PUBLISH on the victim's telemetry topic — must never reach the observer,
 *    and by the broker's default policy closes the connection;
 * 3. a CONNECT with its own token but the victim's client id — must get CONNACK 5
 *    (a failed authentication: paced by the sim's failed-auth budget).
 */
export async function runProbe(ctx: ProbeContext): Promise<void> {
  const { client, record: p } = ctx;
  const id = client.deviceId;
  try {
    p.ownSubscribe = await subscribeOutcome(client, `devices/${id}/commands/#`);
    for (const filter of FORBIDDEN_FILTERS) {
      try {
        const granted = await subscribeOutcome(client, filter);
        if (granted === 128) ctx.onSubscribeDenied();
        p.subscribes.push({ filter, granted });
      } catch (err) {
        p.subscribes.push({ filter, granted: null, error: (err as Error).message });
        throw err;
      }
    }
    // The forbidden publish ends the session; the takeover CONNECT needs only the token, and
    // may wait for the failed-auth budget without holding the publish back.
    if (!client.connected) throw new Error('disconnected before its forbidden publish');
    const token = client.credentials().accessToken;
    const payload = JSON.stringify({ from: id, probe: true, victim: p.victim, t: Date.now() });
    p.publishSentAt = Date.now();
    await client.publish(`devices/${p.victim}/telemetry`, payload, { qos: 0 }).catch(() => {});
    const res = await ctx.budget.run(1, () => connectOnce(ctx.url, { clientId: p.victim, username: id, password: token }, 10_000));
    if (res) {
      p.takeover = res.code;
      res.client?.end(true); // a broker that accepted it has just thrown the victim out
    }
  } catch (err) {
    p.error = (err as Error).message;
  } finally {
    p.done = true;
  }
}

/**
 * The granted QoS of a SUBSCRIBE, 128 when refused. DeviceClient.subscribe
 * resolves 128 for a refused filter; the version this was written against
 * instead rejects with MQTT.js's "Subscribe error: ..." (MQTT.js 5 wraps the
 * SUBACK failure in an ErrorWithSubackPacket that carries `packet.granted`, not
 * `code`), so that rejection — on a connection that is still up — counts as a
 * refusal too.
 */
async function subscribeOutcome(client: DeviceClient, filter: string): Promise<number> {
  try {
    return await client.subscribe(filter, { qos: 0 });
  } catch (err) {
    if (client.connected && /Subscribe error/.test((err as Error).message)) return 128;
    throw err;
  }
}
