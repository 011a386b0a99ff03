import type { IClientOptions, MqttClient } from 'mqtt';
import { kernelSharesPorts } from '../../broker/listeners.js';
import { provisionDevices, type DeviceCredentials } from '../../provisioning/index.js';
import { connect, type ConnectResult } from './broker.js';
import { startRedis, type TestRedis } from './redis.js';
import { startServe, type ServeProcess } from './serve-process.js';
import { until } from './wait.js';

/** Two brokers on one bus: two workers of one node, or two nodes (two `serve`) on one registry file. */
export type Topology = 'workers' | 'nodes';

export interface TestCluster {
  readonly topology: Topology;
  readonly redis: TestRedis;
  readonly nodes: ServeProcess[];
  readonly db: string;
  /** The node's MQTT URL, or node i's. */
  url(node?: number): string;
  /** Devices of `profile` (sensor by default) in the shared registry. */
  provision(ids: string[], profile?: string, opts?: { ttlMs?: number; credentialTtlMs?: number }): Promise<DeviceCredentials[]>;
  /** Where each session of the device opened, oldest first: "node/worker" (from the debug logs). */
  placesOf(deviceId: string): string[];
  /**
   * Connects with `opts` so that the session opens on another broker than `notOn`
   * (another node; or, on one node, the other worker). Where node:cluster's primary
   * hands connections to its workers in turn, a spare device is connected first
   * until it lands on `notOn`; where the kernel spreads them (SO_REUSEPORT, by a
   * hash), the device connects again until it lands elsewhere. Resolves with the
   * client and where it opened.
   */
  connectAway(notOn: string, opts: IClientOptions, got?: string[]): Promise<ConnectResult & { place: string }>;
  /** Connects with `opts` to node `node` (default 0) and says where the session opened; messages go into `got` from the first. */
  connectOn(opts: IClientOptions, node?: number, got?: string[]): Promise<ConnectResult & { place: string }>;
}

/** The test settings every cluster broker gets: a device may reconnect often (the spare above), a debug log to read placement from. */
const ENV = { CREDBROKER_DEVICE_CONNECT_BURST: '1000', CREDBROKER_AUTH_FAIL_BURST: '1000' };

export { until };

/** A redis-server and two brokers on it, stopped on the test's teardown. */
export async function startCluster(t: { teardown(fn: () => unknown): void }, topology: Topology, opts: { args?: string[]; env?: Record<string, string> } = {}): Promise<TestCluster> {
  const redis = await startRedis(t);
  const args = ['--bus', redis.url, '--log-format', 'json', '--log-level', 'debug', ...(opts.args ?? [])];
  const env = { ...ENV, ...opts.env };
  const first = await startServe([...args, '--workers', topology === 'workers' ? '2' : '1'], env);
  const nodes = [first];
  // Registered before the second node starts: the first node's clean-up also removes the registry's folder.
  t.teardown(async () => { for (const n of [...nodes].reverse()) await n.stop(); });
  if (topology === 'nodes') nodes.push(await startServe([...args, '--workers', '1'], env, { db: first.db }));
  const url = (node = 0) => `mqtt://127.0.0.1:${nodes[topology === 'nodes' ? node : 0]!.mqttPort}`;
  const placesOf = (deviceId: string) => nodes.flatMap((n, i) => n.records()
    .filter((r) => r.event === 'session.open' && r.device === deviceId)
    .map((r) => ({ at: typeof r.time === 'number' ? r.time : Date.parse(String(r.time)), place: `${i}/${String(r.worker ?? 0)}` })))
    .sort((a, b) => a.at - b.at).map((p) => p.place);
  const connectOn = async (o: IClientOptions, node = 0, got?: string[]) => {
    const id = o.clientId!;
    const before = placesOf(id).length;
    const r = await connect(url(node), o, got && ((client) => collectInto(client, got)));
    if (!r.client) return { ...r, place: '' };
    await until(`the session of ${id} to open`, () => placesOf(id).length > before);
    return { ...r, place: placesOf(id).at(-1)! };
  };
  const [spare] = await provisionDevices(first.issuer, [{ line: 2, id: 'spare-device' }], { profile: 'sensor', brokerUrl: url() }).then((r) => r.provisioned);
  return {
    topology, redis, nodes, db: first.db, url, placesOf, connectOn,
    provision: async (ids, profile = 'sensor', o = {}) => (await provisionDevices(first.issuer, ids.map((id, i) => ({ line: i + 2, id })), { profile, brokerUrl: url(), ...o })).provisioned,
    async connectAway(notOn, o, got) {
      if (topology === 'nodes') return connectOn(o, notOn.startsWith('0/') ? 1 : 0, got);
      if (kernelSharesPorts()) {
        // Each try lands on either worker with even odds: 30 misses in a row, 1 in 10⁹.
        for (let tries = 0; tries < 30; tries++) {
          const r = await connectOn(o, 0, got);
          if (r.place !== notOn || !r.client) return r;
          await r.client.endAsync(); // a DISCONNECT: no will from a discarded try
        }
        throw new Error(`could not get a connection away from ${notOn}`);
      }
      for (let tries = 0; tries < 6; tries++) {
        const s = await connectOn({ clientId: spare!.deviceId, username: spare!.deviceId, password: spare!.accessToken });
        await s.client?.endAsync();
        if (s.place !== notOn) continue; // the next connection would go back to notOn
        const r = await connectOn(o, 0, got);
        if (r.place !== notOn || !r.client) return r;
        await r.client.endAsync(); // a DISCONNECT: no will from a discarded try
      }
      throw new Error(`could not get a connection away from ${notOn}`);
    },
  };
}

/** The messages `client` receives from now on, as "topic payload" strings (the array fills as they come). */
export function collect(client: MqttClient): string[] {
  return collectInto(client, []);
}

function collectInto(client: MqttClient, got: string[]): string[] {
  client.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
  return got;
}

/** A device's MQTT login from its credentials: client id = username = device id, password = access token. */
export const creds = (d: { deviceId: string; accessToken: string }) => ({ clientId: d.deviceId, username: d.deviceId, password: d.accessToken });

/** A node's `/readyz` status (0 when its ops port does not answer). */
export async function readyz(s: ServeProcess): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${s.httpPort}/readyz`, { signal: AbortSignal.timeout(5000) })).status;
  } catch {
    return 0;
  }
}
