/**
 * 7. The authorizeForward hook in-process (issue 10 #6): what holding every
 * delivery to the session's current ACL costs per message. The hook is called on
 * fake clients in a hot loop, for an observer session (subscribe ACL `devices/#`)
 * receiving 1,000 distinct device topics: with `checkDelivery` off (a session
 * whose subscriptions were all granted under its ACL: the default) and on (a
 * persistent session, or one whose ACL changed at renewal). Set against aedes'
 * own CPU per delivered message when the throughput benchmark ran.
 */
import type { AedesPublishPacket, Client } from 'aedes';
import { Writable } from 'node:stream';
import { createAuthorizeForward } from '../broker/authorize-forward.js';
import { startBroker, validateConfig, createLogger } from '../broker/index.js';
import { sessionAcl, setSession, type Session } from '../broker/session.js';
import type { DeviceId, Jti } from '../registry/index.js';
import type { Fixture } from './lib/fixture.js';
import { median, now } from './lib/stats.js';

export interface ForwardResult {
  /** µs per delivery through the hook, check off / on. */
  readonly offUs: number;
  readonly onUs: number;
  /** What the check adds per delivery (µs). */
  readonly checkUs: number;
}

export async function benchForward(fx: Fixture, runs = 3): Promise<ForwardResult> {
  const sink = new Writable({ write(_c, _e, cb) { cb(); } });
  const broker = await startBroker(validateConfig({ db: fx.db, host: '127.0.0.1', mqttPort: null, wsPort: null, httpPort: null, logLevel: 'info' }), { logger: createLogger('info', sink) });
  try {
    const forward = createAuthorizeForward(broker.context, null); // the ACL check alone; the queue bounds are measured by the limits bench
    const id = fx.observer.deviceId as DeviceId;
    const session = (checkDelivery: boolean): Client => {
      const client = { id } as unknown as Client;
      const s: Session = {
        deviceId: id, kind: 'token', jti: 'bench' as Jti, kid: null, connectedAt: Date.now(), expiresAt: Date.now() + 3_600_000, refreshHash: null, ended: null, checkDelivery,
        acl: sessionAcl(id, { pub: ['devices/+/commands/#'], sub: ['devices/#'] }),
      };
      setSession(client, s);
      return client;
    };
    const off = session(false), on = session(true);
    const packets = fx.devices.slice(0, 1000).map((d) => ({ cmd: 'publish', topic: `devices/${d.deviceId}/telemetry`, payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }) as unknown as AedesPublishPacket);
    const N = 1_000_000;
    const time = (client: Client) => {
      let delivered = 0;
      const t0 = now();
      for (let i = 0; i < N; i++) if (forward(client, packets[i % packets.length]!)) delivered++;
      const us = ((now() - t0) * 1000) / N;
      if (delivered !== N) throw new Error(`forward refused ${N - delivered} deliveries the ACL allows`);
      return us;
    };
    time(off); time(on); // warm-up
    const a: number[] = [], b: number[] = [];
    // Alternating blocks: on shared, noisy cores each pair sees the same load.
    for (let k = 0; k < Math.max(runs, 5); k++) { a.push(time(off)); b.push(time(on)); }
    const diffs = a.map((x, i) => b[i]! - x);
    return { offUs: median(a), onUs: median(b), checkUs: Math.max(0, median(diffs)) };
  } finally {
    await broker.close();
  }
}
