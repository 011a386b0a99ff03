/**
 * The benchmark's registry: a temporary SQLite file (never inside the repo), or a given database,
 * with every device the benchmarks connect as, each with its own token.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openIssuer, provisionDevices, type DeviceCredentials } from '../../provisioning/index.js';
import { connectPacket, type Credentials } from './raw-client.js';
import { now } from './stats.js';

export interface Fixture {
  readonly dir: string;
  readonly db: string;
  /** Sensor devices for connect rate, storm, memory and publishers. */
  readonly devices: readonly DeviceCredentials[];
  /** Their CONNECT packets (client id = username = device id, password = token), pre-encoded. */
  readonly connects: readonly Buffer[];
  /** An `observer` profile device (subscribes `devices/#`). */
  readonly observer: DeviceCredentials;
  /** Devices reserved for the revocation benchmark (each revoked once). */
  readonly revocable: readonly DeviceCredentials[];
  readonly provisionMs: number;
  close(): void;
}

export const credsOf = (d: Pick<DeviceCredentials, 'deviceId' | 'accessToken'>): Credentials => ({ clientId: d.deviceId, username: d.deviceId, password: d.accessToken });

/** `db`: a registry location to fill instead of a new file in the temp folder (a PostgreSQL database). */
export async function createFixture(opts: { devices: number; revocable: number; db?: string }): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-bench-'));
  const db = opts.db ?? join(dir, 'registry.db');
  const issuer = await openIssuer(db);
  const t0 = now();
  const rows = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ line: i + 2, id: `${prefix}${String(i).padStart(5, '0')}` }));
  const brokerUrl = 'mqtt://127.0.0.1:1883';
  const { provisioned: devices } = await provisionDevices(issuer, rows('bench-c-', opts.devices), { profile: 'sensor', brokerUrl });
  // None when no revocation benchmark runs (a batch of no rows is refused).
  const revocable = opts.revocable > 0 ? (await provisionDevices(issuer, rows('bench-r-', opts.revocable), { profile: 'sensor', brokerUrl })).provisioned : [];
  const { provisioned: [observer] } = await provisionDevices(issuer, [{ line: 2, id: 'bench-observer' }], { profile: 'observer', brokerUrl });
  const provisionMs = now() - t0;
  await issuer.reg.close();
  return {
    dir, db, devices, revocable, observer: observer!, provisionMs,
    connects: devices.map((d) => connectPacket(credsOf(d))),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Warm-up CONNECTs for a run that measures the first `n`: devices past them when
 * the fixture has enough, so the measured CONNECTs stay fresh (a token already
 * accepted would be answered from credbroker's verified-token cache).
 */
export function warmupConnects(fx: Pick<Fixture, 'connects'>, n: number, count: number): readonly Buffer[] {
  return fx.connects.length >= n + count ? fx.connects.slice(n, n + count) : fx.connects.slice(Math.max(0, n - count), n);
}
