import { UsageError } from '../errors/index.js';
import { parseDuration } from '../util/duration.js';

/** What the broker does with a publish its ACL refuses (must match the broker's `deniedPublish`). */
export type SimDeniedPublish = 'disconnect' | 'drop';

/**
 * Everything a simulation run needs. Library callers build it with
 * `resolveSimOptions({...})`; the CLI with `parseSimFlags(flags)`.
 */
export interface SimOptions {
  /**
   * Broker URL the devices connect to, or several separated by commas (the nodes
   * of a cluster): the fleet is spread over them, device k on URL k mod n.
   */
  readonly url: string;
  /**
   * Registry file shared with the broker. With it the sim provisions its own
   * devices and an observer, and revokes devices "as another process would".
   */
  readonly db: string | null;
  /** A folder of credentials files (`<deviceId>.json`) to use instead of provisioning. */
  readonly credentialsDir: string | null;
  /**
   * Provisioning by claim: the sim creates a (simulation) claim of this name for
   * exactly `devices` ids of the run, and its devices start unprovisioned: each
   * claims its credentials, then connects, publishes and renews. Needs `db`.
   */
  readonly claim: string | null;
  readonly devices: number;
  readonly durationMs: number;
  /** Access-token lifetime of the `sim-sensor` profile (provisioning mode). */
  readonly tokenTtlMs: number;
  readonly publishIntervalMs: number;
  /** Devices that go offline past their token's expiry and come back through their refresh credential. */
  readonly offlineFraction: number;
  /** Devices revoked mid-run through the registry. */
  readonly revokeFraction: number;
  /** Devices that try forbidden subscribes, a forbidden publish and a client-id takeover. */
  readonly probeFraction: number;
  /** Devices that never renew: the broker must close them at exp + leeway (at least one when > 0). */
  readonly nonRenewingFraction: number;
  /** The broker's clock leeway (its `leewaySec`). */
  readonly leewayMs: number;
  /** Allowed lateness of a kick (expiry, revocation, refused publish). */
  readonly kickSlackMs: number;
  /** The broker's policy for a refused publish. */
  readonly deniedPublish: SimDeniedPublish;
  readonly connectConcurrency: number;
  /** Seed of every random choice (cohorts, timings): the same seed gives the same plan. */
  readonly seed: number;
  /** Reconnect attempts of a revoked device after its kick, alternating its access token and refresh credential (each must be refused). */
  readonly revokedRetries: number;
  /**
   * Pacing of the sim's deliberate failed authentications (revoked devices
   * retrying, client-id probes): every sim device shares one source address, and
   * the broker throttles failed logins per address (authFailBurst 20,
   * authFailPerSec 2 by default). Kept below that, so that deliberate failures
   * never get legitimate devices throttled.
   */
  readonly failedAuthBurst: number;
  readonly failedAuthPerSec: number;
  /** Device id prefix; a run tag is appended so that runs never collide in a registry. */
  readonly idPrefix: string;
  /**
   * The broker's ops HTTP address: before provisioning, the sim checks there
   * (`/.well-known/jwks.json`) that the broker trusts this registry's signing key.
   * Null: `http://<host of url>:9100` when `url` is on port 1883 (serve's default
   * pair), otherwise no check. When it does not answer, the check is skipped.
   */
  readonly opsUrl: string | null;
  /** Leave the simulation devices and the sim-sensor profile in the registry after the run. */
  readonly keep: boolean;
  /** Live progress on stderr: 'auto' = only when stderr is a TTY (and not --json). */
  readonly progress: boolean | 'auto';
  readonly json: boolean;
}

export const DEFAULT_SIM_OPTIONS: SimOptions = {
  url: 'mqtt://127.0.0.1:1883',
  db: null,
  credentialsDir: null,
  claim: null,
  devices: 100,
  durationMs: 60_000,
  tokenTtlMs: 30_000,
  publishIntervalMs: 5_000,
  offlineFraction: 0.1,
  revokeFraction: 0.05,
  probeFraction: 0.05,
  nonRenewingFraction: 0.01,
  leewayMs: 5_000,
  kickSlackMs: 1_000,
  deniedPublish: 'disconnect',
  connectConcurrency: 100,
  seed: 1,
  revokedRetries: 2,
  failedAuthBurst: 10,
  failedAuthPerSec: 1,
  idPrefix: 'sim',
  opsUrl: null,
  keep: false,
  progress: 'auto',
  json: false,
};

const fail = (msg: string): never => {
  throw new UsageError(msg);
};

function checkFraction(name: string, v: number): void {
  if (!(Number.isFinite(v) && v >= 0 && v <= 1)) fail(`invalid --${name} ${v}: expected a fraction between 0 and 1`);
}

/** The URLs of `--url` (one, or several separated by commas), in order. */
export function brokerUrls(url: string): string[] {
  return url.split(',').map((u) => u.trim());
}

/** Fills in defaults and validates (a bad value is a one-line UsageError). */
export function resolveSimOptions(partial: Partial<SimOptions> = {}): SimOptions {
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  const o: SimOptions = { ...DEFAULT_SIM_OPTIONS, seed: (Date.now() % 2_147_483_647) >>> 0, ...defined };
  for (const u of brokerUrls(o.url)) if (!/^(mqtts?|wss?|tcp|tls):\/\/[^,\s]+$/.test(u)) fail(`invalid --url "${u}": expected mqtt://HOST:PORT (or mqtts://, ws://, wss://), several separated by commas`);
  if (!Number.isInteger(o.devices) || o.devices < 1 || o.devices > 100_000) fail(`invalid --devices ${o.devices}: expected an integer 1–100000`);
  for (const [name, v] of [['duration', o.durationMs], ['token-ttl', o.tokenTtlMs], ['publish-interval', o.publishIntervalMs]] as const) {
    if (!(Number.isFinite(v) && v > 0)) fail(`invalid --${name}: must be greater than zero`);
  }
  if (!(o.leewayMs >= 0)) fail('invalid --leeway: must not be negative');
  checkFraction('offline-fraction', o.offlineFraction);
  checkFraction('revoke-fraction', o.revokeFraction);
  checkFraction('probe-fraction', o.probeFraction);
  checkFraction('non-renewing-fraction', o.nonRenewingFraction);
  if (o.offlineFraction + o.revokeFraction + o.probeFraction + o.nonRenewingFraction > 0.9) {
    fail('the offline, revoke, probe and non-renewing fractions add up to more than 0.9: leave room for steady devices (probe victims and the baseline)');
  }
  if (!Number.isInteger(o.connectConcurrency) || o.connectConcurrency < 1) fail(`invalid --connect-concurrency ${o.connectConcurrency}: expected a positive integer`);
  if (!Number.isInteger(o.seed) || o.seed < 0) fail(`invalid --seed ${o.seed}: expected a non-negative integer`);
  if (!Number.isInteger(o.revokedRetries) || o.revokedRetries < 0) fail(`invalid --revoked-retries ${o.revokedRetries}`);
  if (!(o.failedAuthBurst >= 1 && o.failedAuthPerSec > 0)) fail('invalid failed-auth budget: burst ≥ 1 and rate > 0');
  if (o.deniedPublish !== 'disconnect' && o.deniedPublish !== 'drop') fail(`invalid --denied-publish "${o.deniedPublish}": expected disconnect or drop`);
  if (!/^[A-Za-z0-9._:-]{1,40}$/.test(o.idPrefix)) fail(`invalid --id-prefix "${o.idPrefix}": 1–40 chars of [A-Za-z0-9._:-]`);
  if (o.opsUrl !== null && !/^https?:\/\/[^/?#]+\/?$/.test(o.opsUrl)) fail(`invalid --broker "${o.opsUrl.slice(0, 80)}": expected the broker's ops HTTP address, e.g. http://127.0.0.1:9100`);
  if (o.claim !== null) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(o.claim)) fail(`invalid --claim "${o.claim.slice(0, 80)}": a claim name, 1–64 letters, digits, '.', '_' or '-'`);
    if (o.credentialsDir) fail('--claim and --credentials exclude each other: claimed devices start without credentials');
    if (!o.db) fail('--claim needs --db: the sim creates its claim in the registry the broker uses');
  }
  if (!o.db && !o.credentialsDir) fail('the sim needs --db FILE (it provisions its own devices in the registry the broker uses) or --credentials DIR');
  return o;
}

/** The CLI's flags, as commander hands them over (strings and booleans). */
export interface SimFlags {
  url?: string; db?: string; credentials?: string; claim?: string; devices?: string; duration?: string; tokenTtl?: string;
  publishInterval?: string; offlineFraction?: string; revokeFraction?: string; probeFraction?: string;
  nonRenewingFraction?: string; leeway?: string; deniedPublish?: string; connectConcurrency?: string; seed?: string;
  revokedRetries?: string; failedAuthBurst?: string; failedAuthPerSec?: string; idPrefix?: string;
  broker?: string; keep?: boolean; json?: boolean; progress?: boolean;
}

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) fail(`invalid --${name} "${v}": expected a number`);
  return n;
}

const dur = (name: string, v: string | undefined) => (v === undefined ? undefined : parseDuration(v, `--${name}`));

/** Parses the CLI's string flags into validated options. */
export function parseSimFlags(f: SimFlags, env: NodeJS.ProcessEnv = process.env, defaultDb?: string): SimOptions {
  const db = f.db ?? env.CREDBROKER_DB ?? (f.credentials ? undefined : defaultDb);
  return resolveSimOptions({
    url: f.url,
    db: db ?? null,
    credentialsDir: f.credentials ?? null,
    claim: f.claim ?? null,
    devices: num('devices', f.devices),
    durationMs: dur('duration', f.duration),
    tokenTtlMs: dur('token-ttl', f.tokenTtl),
    publishIntervalMs: dur('publish-interval', f.publishInterval),
    offlineFraction: num('offline-fraction', f.offlineFraction),
    revokeFraction: num('revoke-fraction', f.revokeFraction),
    probeFraction: num('probe-fraction', f.probeFraction),
    nonRenewingFraction: num('non-renewing-fraction', f.nonRenewingFraction),
    leewayMs: f.leeway === '0' ? 0 : dur('leeway', f.leeway),
    deniedPublish: f.deniedPublish as SimDeniedPublish | undefined,
    connectConcurrency: num('connect-concurrency', f.connectConcurrency),
    seed: num('seed', f.seed),
    revokedRetries: num('revoked-retries', f.revokedRetries),
    failedAuthBurst: num('failed-auth-burst', f.failedAuthBurst),
    failedAuthPerSec: num('failed-auth-per-sec', f.failedAuthPerSec),
    idPrefix: f.idPrefix,
    opsUrl: f.broker ?? null,
    keep: f.keep ?? false,
    json: f.json ?? false,
    progress: f.progress === false ? false : 'auto',
  });
}
