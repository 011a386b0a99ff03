import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors/index.js';
import { openIssuer, provisionDevices, readCredentialsFile, writeCredentialsFile, type DeviceCredentials, type Issuer } from '../provisioning/index.js';
import { DEFAULT_PROFILES, type ProfileName } from '../registry/index.js';
import { createClaim } from '../operations/index.js';
import { brokerUrls, type SimOptions } from './options.js';

/** The profile the sim provisions its devices under: the `sensor` ACL with the run's token lifetime. */
export const SIM_PROFILE = 'sim-sensor';
export const OBSERVER_PROFILE = 'observer';

/** A `--claim` run: the claim the sim created, and the ids its devices claim (none is provisioned yet). */
export interface SimClaim {
  readonly name: string;
  readonly credential: string;
  readonly quota: number;
  /** The devices' ids and broker URLs, in a stable order. */
  readonly devices: readonly { readonly deviceId: string; readonly brokerUrl: string }[];
  /** An id of the run's shape that is outside the claim's pattern: its claim must be refused (`id_not_allowed`). */
  readonly outsideId: string;
  /** One id more than the quota: once every device has claimed, its claim must be refused (`quota_exhausted`). */
  readonly overQuotaId: string;
}

export interface Fleet {
  /** Credentials of the simulated devices, in a stable order; `brokerUrl`: the one of --url's list each connects to (empty in a `--claim` run: see `claim`). */
  readonly devices: DeviceCredentials[];
  readonly claim: SimClaim | null;
  /** The observer's credentials (null without a registry). */
  readonly observer: DeviceCredentials | null;
  /** The registry connection (null in --credentials mode without --db): used to revoke. */
  readonly issuer: Issuer | null;
  /** Where each device's credentials file lives (--credentials mode), to write rotated credentials back. */
  readonly files: ReadonlyMap<string, string>;
  /** The ids this run provisioned (marked as simulation devices), the observer included: what the clean-up removes. */
  readonly provisionedIds: readonly string[];
  readonly provisionMs: number;
  close(): Promise<void>;
}

/**
 * Gets the fleet ready: either provisions `opts.devices` new devices (ids
 * `<prefix>-<runTag>-<n>`) under the `sim-sensor` profile (created or updated
 * with the sensor ACL and `tokenTtlMs`), or reads a folder of credentials files.
 * With a registry it also provisions an observer device (profile `observer`).
 */
export async function prepareFleet(
  opts: SimOptions, onProgress?: (done: number, total: number) => void,
  beforeProvisioning?: (issuer: Issuer) => Promise<void>,
): Promise<Fleet> {
  const started = Date.now();
  const urls = brokerUrls(opts.url);
  const issuer = opts.db ? await openIssuer(opts.db) : null;
  try {
    if (issuer) await beforeProvisioning?.(issuer);
    const runTag = Date.now().toString(36);
    let devices: DeviceCredentials[] = [];
    let claim: SimClaim | null = null;
    const files = new Map<string, string>();
    if (opts.credentialsDir) {
      devices = readCredentialsDir(opts.credentialsDir, opts.devices, files);
    } else {
      const reg = issuer!.reg;
      const sensor = DEFAULT_PROFILES.find((p) => p.name === 'sensor')!;
      await reg.profiles.set({ name: SIM_PROFILE as ProfileName, publish: sensor.publish, subscribe: sensor.subscribe, tokenTtlMs: opts.tokenTtlMs });
      const width = String(opts.devices + 1).length;
      const idOf = (n: number) => `${opts.idPrefix}-${runTag}-${String(n).padStart(width, '0')}`;
      const rows = Array.from({ length: opts.devices }, (_, i) => ({ line: i + 1, id: idOf(i + 1) }));
      if (opts.claim) {
        // Quota = the fleet, pattern = this run's numbered ids: the probes check both edges.
        const idPattern = `${`${opts.idPrefix}-${runTag}-`.replace(/[.]/g, '\\.')}[0-9]{${width}}`;
        const made = await createClaim(reg, { name: opts.claim, profile: SIM_PROFILE, brokerUrl: urls[0]!, maxDevices: opts.devices, idPattern, simulation: true });
        claim = {
          name: made.claim.name, credential: made.credential, quota: opts.devices,
          devices: rows.map((r, k) => ({ deviceId: r.id, brokerUrl: urls[k % urls.length]! })),
          outsideId: `${opts.idPrefix}-${runTag}-x${'0'.repeat(width)}`, overQuotaId: idOf(opts.devices + 1),
        };
      } else {
        const res = await provisionDevices(issuer!, rows, { profile: SIM_PROFILE, brokerUrl: urls[0]!, chunkSize: 500, onProgress, simulation: true });
        devices = res.provisioned;
      }
    }
    let observer: DeviceCredentials | null = null;
    if (issuer) {
      const reg = issuer.reg;
      if (!(await reg.profiles.get(OBSERVER_PROFILE))) {
        const obs = DEFAULT_PROFILES.find((p) => p.name === OBSERVER_PROFILE)!;
        await reg.profiles.set(obs);
      }
      const res = await provisionDevices(issuer, [{ line: 1, id: `${opts.idPrefix}-${runTag}-observer` }], { profile: OBSERVER_PROFILE, brokerUrl: urls[0]!, simulation: true });
      observer = res.provisioned[0] ?? null;
    }
    // A claim run's ids (the probes' too, should one get through) are removed like provisioned ones.
    const claimIds = claim ? [...claim.devices.map((d) => d.deviceId), claim.outsideId, claim.overQuotaId] : [];
    const provisionedIds = [...(opts.credentialsDir ? [] : devices.map((d) => d.deviceId)), ...claimIds, ...(observer ? [observer.deviceId] : [])];
    return {
      devices: devices.map((d, k) => ({ ...d, brokerUrl: urls[k % urls.length]! })),
      claim, observer, issuer, files, provisionedIds,
      provisionMs: Date.now() - started,
      close: async () => { await issuer?.reg.close(); },
    };
  } catch (err) {
    await issuer?.reg.close();
    throw err;
  }
}

function readCredentialsDir(dir: string, max: number, files: Map<string, string>): DeviceCredentials[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    throw new UsageError(`cannot read credentials folder ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const out: DeviceCredentials[] = [];
  for (const name of names) {
    if (out.length >= max) break;
    const path = join(dir, name);
    let c: DeviceCredentials;
    try {
      c = readCredentialsFile(path);
    } catch (err) {
      throw new UsageError(`credentials file ${path} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof c.deviceId !== 'string' || typeof c.accessToken !== 'string' || typeof c.refreshCredential !== 'string') {
      throw new UsageError(`credentials file ${path} lacks deviceId, accessToken or refreshCredential`);
    }
    files.set(c.deviceId, path);
    out.push(c);
  }
  if (out.length === 0) throw new UsageError(`no credentials files (*.json) in ${dir}`);
  return out;
}

/**
 * Writes a device's current credentials back to its file: the refresh
 * credential rotates on use, and replaying a superseded one later would get
 * the device revoked as stolen.
 */
export function saveCredentials(fleet: Fleet, creds: DeviceCredentials): void {
  const path = fleet.files.get(creds.deviceId);
  if (!path) return;
  const original = readCredentialsFile(path);
  writeCredentialsFile(join(path, '..'), { ...creds, brokerUrl: original.brokerUrl });
}
