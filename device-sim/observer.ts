import { DeviceClient } from '../device/index.js';
import type { DeviceCredentials } from '../provisioning/index.js';
import type { ObserverRecord } from './state.js';

/** Where the observer listens: every device's traffic (the `observer` profile may subscribe `devices/#`). */
export const OBSERVER_FILTER = 'devices/#';

/**
 * A backend-style session that subscribes `devices/#` and records every
 * delivered message. Sim devices publish `{"from": "<their id>", ...}` on their
 * own topics, so a delivery on `devices/<X>/...` whose `from` is not X (or that
 * carries the probe marker) is a forbidden publish the broker let through. It
 * also remembers each device's last delivery: a revoked device's traffic must
 * stop at its kick.
 */
export class Observer {
  private readonly client: DeviceClient;
  private stopping = false;

  constructor(creds: DeviceCredentials, url: string, private readonly rec: ObserverRecord, private readonly fleet: ReadonlySet<string>, private readonly onError: (msg: string) => void) {
    this.client = new DeviceClient({ credentials: creds, url, backoff: { initialMs: 200, maxMs: 2000 } });
    this.client.on('message', (topic, payload) => this.onMessage(topic, payload));
    this.client.on('disconnected', ({ reason }) => {
      if (this.stopping) return;
      rec.disconnects++;
      onError(`observer disconnected (${reason}): deliveries may have been missed`);
    });
    this.client.on('error', (err) => {
      if (!this.stopping) onError(`observer: ${err.message}`);
    });
  }

  async start(): Promise<void> {
    try {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.client.start(),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('no connect within 30 s: is the broker up?')), 30_000); }),
      ]).finally(() => clearTimeout(timer));
      const granted = await this.client.subscribe(OBSERVER_FILTER, { qos: 0 });
      if (granted === 128) throw new Error(`the broker refused the observer's ${OBSERVER_FILTER} subscription`);
      this.rec.available = true;
      this.rec.unavailableReason = null;
    } catch (err) {
      this.rec.available = false;
      this.rec.unavailableReason = (err as Error).message;
      this.onError(`observer unavailable: ${(err as Error).message}`);
      await this.client.stop().catch(() => {});
    }
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parts = topic.split('/');
    const topicDevice = parts[0] === 'devices' ? (parts[1] ?? null) : null;
    let from: string | null = null;
    let probe = false;
    try {
      const body = JSON.parse(payload.toString('utf8')) as { from?: unknown; probe?: unknown };
      if (typeof body.from === 'string') from = body.from;
      probe = body.probe === true;
    } catch {
      // not a sim payload
    }
    const ours = (topicDevice !== null && this.fleet.has(topicDevice)) || (from !== null && this.fleet.has(from));
    if (!ours) return; // other traffic on a shared broker
    const now = Date.now();
    this.rec.messages++;
    if (probe || from !== topicDevice) this.rec.forbidden.push({ topic, from, probe, at: now });
    if (from !== null) this.rec.lastSeen.set(from, now);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.client.stop();
  }
}
