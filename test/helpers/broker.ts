import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { startBroker, validateConfig, createLogger, type BrokerConfig, type RunningBroker, type StartOptions } from '../../broker/index.js';
import { openIssuer, provisionDevices, type DeviceCredentials, type Issuer } from '../../provisioning/index.js';
import { localRegistryPath } from '../../registry/index.js';
import { registryTargetIn } from './backend.js';
import { within } from './wait.js';

/** Every log line any test broker wrote: the secrets scan reads this. */
export const brokerLogLines: string[] = [];

export interface TestBroker {
  readonly broker: RunningBroker;
  readonly dir: string;
  readonly db: string;
  readonly url: string;
  /** An issuer on the same registry file (a second connection, as the CLI would have). */
  readonly issuer: Issuer;
  provision(ids: string[], profile?: string, opts?: { ttlMs?: number; credentialTtlMs?: number }): Promise<DeviceCredentials[]>;
  close(): Promise<void>;
}

export interface TestBrokerOptions extends Omit<StartOptions, 'logger'> {
  /** Serve another broker's registry (as a second worker or node would); left in place on close. */
  readonly db?: string;
}

/**
 * A real broker on ephemeral loopback ports over a real registry: a SQLite file in
 * a temp folder, a new database on a postgres test run (helpers/backend.ts), or the one given.
 */
export async function startTestBroker(overrides: Partial<BrokerConfig> = {}, opts: TestBrokerOptions = {}): Promise<TestBroker> {
  const { db: shared, ...start } = opts;
  const dir = shared && localRegistryPath(shared) !== null ? dirname(shared) : mkdtempSync(join(tmpdir(), 'credbroker-test-'));
  const db = shared ?? await registryTargetIn(dir);
  const issuer = await openIssuer(db);
  const sink = new Writable({ write(chunk, _enc, cb) { brokerLogLines.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
  const config = validateConfig({ db, host: '127.0.0.1', mqttPort: 0, wsPort: null, httpPort: 0, logLevel: 'debug', ...overrides });
  const broker = await startBroker(config, { ...start, logger: createLogger('debug', sink) });
  const url = `mqtt://127.0.0.1:${broker.ports.mqtt}`;
  return {
    broker, dir, db, url, issuer,
    async provision(ids, profile = 'sensor', opts = {}) {
      const res = await provisionDevices(issuer, ids.map((id, i) => ({ line: i + 2, id })), { profile, brokerUrl: url, ...opts });
      return res.provisioned;
    },
    async close() {
      await broker.close();
      await issuer.reg.close();
      if (!shared || localRegistryPath(shared) === null) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ConnectResult {
  readonly client: MqttClient | null;
  /** CONNACK return code: 0 on success. */
  readonly code: number;
}

/**
 * Connects once (no reconnect) and reports the CONNACK code.
 * @param early called with the client before it connects (e.g. to catch messages a resumed session gets at once)
 */
export function connect(url: string, opts: IClientOptions, early?: (client: MqttClient) => void): Promise<ConnectResult> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...opts });
    early?.(client);
    client.once('connect', () => resolve({ client, code: 0 }));
    client.once('error', (err: Error & { code?: number }) => {
      client.end(true);
      resolve({ client: null, code: typeof err.code === 'number' ? err.code : -1 });
    });
    client.once('close', () => resolve({ client: null, code: -2 }));
  });
}

/** Connects as a provisioned device with its access token. */
export function connectDevice(url: string, creds: Pick<DeviceCredentials, 'deviceId' | 'accessToken'>, extra: IClientOptions = {}): Promise<ConnectResult> {
  return connect(url, { clientId: creds.deviceId, username: creds.deviceId, password: creds.accessToken, ...extra });
}

/**
 * Resolves when the client's connection closes, with the time it happened;
 * rejects, saying so, when it has not closed within `ms`.
 */
export function closed(client: MqttClient, ms = 20_000): Promise<number> {
  const p = within(`the connection of ${client.options.clientId ?? 'a client'} to close`, new Promise<number>((resolve) => client.once('close', () => resolve(Date.now()))), ms);
  // Some callers keep it without awaiting it (a connection that may or may not be closed): that is no failure of its own.
  p.catch(() => {});
  return p;
}

/** Subscribes and returns the granted QoS (128 = refused), without MQTT.js turning 0x80 into a rejection. */
export function subscribeGranted(client: MqttClient, filter: string): Promise<number> {
  return new Promise((resolve, reject) => {
    client.subscribe(filter, { qos: 1 }, (err, granted) => {
      // MQTT.js reports a refused filter as an error carrying the SUBACK packet.
      const refused = (err as (Error & { packet?: { granted?: number[] } }) | null)?.packet?.granted?.[0];
      const g = refused ?? (err ? undefined : granted?.[0]?.qos);
      if (g === undefined) reject(err ?? new Error('no SUBACK'));
      else resolve(g);
    });
  });
}
