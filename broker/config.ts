import { readFileSync } from 'node:fs';
import { UsageError } from '../errors/index.js';
import { defaultDbPath } from '../registry/index.js';
import { parseDuration } from '../util/duration.js';

/** What to do with a publish the ACL refuses: MQTT 3.1.1 has no negative ack. */
export type DeniedPublishPolicy = 'disconnect' | 'drop';

/**
 * Test-only switches that deliberately weaken the broker, so the device
 * simulator can prove that its invariants catch a broken broker. Never set in
 * production; `serve` logs a loud warning when one is on.
 */
export interface Weakening {
  readonly skipSubscribeCheck?: boolean;
  readonly skipPublishCheck?: boolean;
  readonly neverExpireSessions?: boolean;
  readonly ignoreRevocations?: boolean;
}

export interface BrokerConfig {
  readonly db: string;
  readonly host: string;
  /** `null` disables a listener; 0 picks an ephemeral port. */
  readonly mqttPort: number | null;
  readonly tlsPort: number | null;
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  readonly wsPort: number | null;
  readonly httpPort: number | null;
  /** The ops HTTP port has no authentication: loopback unless the operator says otherwise. */
  readonly httpHost: string;
  /** Browser origins allowed on the WebSocket listener; empty: any (a request without Origin, i.e. not a browser, is always allowed). */
  readonly wsOrigins: readonly string[];
  /** Listen backlog of the MQTT listeners: a reconnect storm must not overflow it. */
  readonly backlog: number;
  readonly leewaySec: number;
  readonly connectTimeoutMs: number;
  readonly maxPasswordBytes: number;
  readonly maxConnections: number;
  readonly deniedPublish: DeniedPublishPolicy;
  /** Failed authentications tolerated per address before throttling: burst, then refill rate. */
  readonly authFailBurst: number;
  readonly authFailPerSec: number;
  /** Connects per device (flapping guard): burst, then refill rate. */
  readonly deviceConnectBurst: number;
  readonly deviceConnectPerSec: number;
  /** Renewals per device: burst, then refill rate. */
  readonly renewBurst: number;
  readonly renewPerSec: number;
  readonly revocationPollMs: number;
  readonly drainTimeoutMs: number;
  readonly maxInflightInbound: number;
  readonly logLevel: string;
  readonly weaken: Weakening;
}

export const DEFAULT_CONFIG: BrokerConfig = {
  db: defaultDbPath(),
  host: '0.0.0.0',
  mqttPort: 1883,
  tlsPort: null,
  tlsCert: null,
  tlsKey: null,
  wsPort: 8083,
  httpPort: 9100,
  httpHost: '127.0.0.1',
  wsOrigins: [],
  backlog: 4096,
  leewaySec: 5,
  connectTimeoutMs: 10_000,
  maxPasswordBytes: 4096,
  maxConnections: 100_000,
  deniedPublish: 'disconnect',
  authFailBurst: 20,
  authFailPerSec: 2,
  deviceConnectBurst: 10,
  deviceConnectPerSec: 0.5,
  renewBurst: 3,
  renewPerSec: 0.5,
  revocationPollMs: 50,
  drainTimeoutMs: 30_000,
  maxInflightInbound: 100,
  logLevel: 'info',
  weaken: {},
};

type Raw = Record<string, unknown>;

/** Environment variables read by `serve`: CREDBROKER_<FIELD> in upper snake case, e.g. CREDBROKER_MQTT_PORT. */
function fromEnv(env: NodeJS.ProcessEnv): Raw {
  const out: Raw = {};
  for (const key of Object.keys(DEFAULT_CONFIG)) {
    const name = `CREDBROKER_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    if (env[name] !== undefined && key !== 'weaken') out[key] = env[name];
  }
  if (env.CREDBROKER_DB) out.db = env.CREDBROKER_DB;
  return out;
}

function fromFile(path: string): Raw {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code}`, 'ERR_CONFIG');
  }
  try {
    const obj = JSON.parse(text) as unknown;
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error('not an object');
    return obj as Raw;
  } catch (err) {
    throw new UsageError(`config file ${path} is not a JSON object: ${(err as Error).message}`, 'ERR_CONFIG');
  }
}

/**
 * Builds the broker configuration: defaults < config file < environment < flags.
 * Every value is validated; an unknown key or a bad value is a one-line error.
 */
export function loadConfig(flags: Raw = {}, env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  const file = typeof flags.config === 'string' ? fromFile(flags.config) : {};
  const merged: Raw = { ...file, ...fromEnv(env) };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined && k !== 'config') merged[k] = v;
  return validate(merged);
}

export function validate(raw: Raw): BrokerConfig {
  const out: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in DEFAULT_CONFIG)) throw new UsageError(`unknown config setting "${key}"`, 'ERR_CONFIG');
    out[key] = coerce(key as keyof BrokerConfig, value);
  }
  const c = out as unknown as BrokerConfig;
  if ((c.tlsCert === null) !== (c.tlsKey === null)) throw new UsageError('TLS needs both --tls-cert and --tls-key', 'ERR_CONFIG');
  if (c.tlsCert && c.tlsPort === null) out.tlsPort = 8883;
  if (c.tlsPort !== null && !c.tlsCert) throw new UsageError('--tls-port needs --tls-cert and --tls-key', 'ERR_CONFIG');
  return out as unknown as BrokerConfig;
}

const PORTS = new Set(['mqttPort', 'tlsPort', 'wsPort', 'httpPort']);
const DURATIONS = new Set(['connectTimeoutMs', 'revocationPollMs', 'drainTimeoutMs']);
const STRINGS = new Set(['db', 'host', 'httpHost', 'tlsCert', 'tlsKey', 'logLevel']);

function coerce(key: keyof BrokerConfig, value: unknown): unknown {
  const bad = (why: string): never => {
    throw new UsageError(`invalid ${key} ${JSON.stringify(value)}: ${why}`, 'ERR_CONFIG');
  };
  if (key === 'weaken') return typeof value === 'object' && value !== null ? value : bad('expected an object');
  if (PORTS.has(key)) {
    if (value === null || value === 'off' || value === false) return null;
    const n = toNumber(value);
    return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : bad('expected a port number 0–65535 or "off"');
  }
  if (STRINGS.has(key)) {
    if (value === null && (key === 'tlsCert' || key === 'tlsKey')) return null;
    return typeof value === 'string' && value.length > 0 ? value : bad('expected a non-empty string');
  }
  if (key === 'wsOrigins') return origins(value, bad);
  if (key === 'deniedPublish') return value === 'disconnect' || value === 'drop' ? value : bad('expected "disconnect" or "drop"');
  if (DURATIONS.has(key) && typeof value === 'string' && /[a-z]$/.test(value)) return parseDuration(value, key);
  const n = toNumber(value);
  return Number.isFinite(n) && n >= 0 ? n : bad('expected a non-negative number');
}

/** A list of web origins (`https://app.example.com`): an array, or a comma-separated string (flag, environment). */
function origins(value: unknown, bad: (why: string) => never): string[] {
  const list: unknown = typeof value === 'string' ? value.split(',').map((o) => o.trim()).filter(Boolean) : value;
  if (!Array.isArray(list)) return bad('expected a list of origins');
  // An origin is scheme://host[:port] exactly, as a browser sends it: no path, no trailing slash.
  return list.map((o: unknown) => (typeof o === 'string' && canonicalOrigin(o) === o.toLowerCase() ? o.toLowerCase() : bad(`${JSON.stringify(o)} is not an origin like https://app.example.com`)));
}

function canonicalOrigin(text: string): string | null {
  try {
    const origin = new URL(text).origin;
    return origin === 'null' ? null : origin;
  } catch {
    return null;
  }
}

/**
 * A number, or a string holding one (environment variables, flags). Unlike `Number()`,
 * an empty string, `null`, `true` or `[]` is not silently 0 or 1 (an empty
 * CREDBROKER_MQTT_PORT must not mean "any ephemeral port").
 */
function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '') return Number(value);
  return Number.NaN;
}
