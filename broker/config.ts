import { readFileSync } from 'node:fs';
import { UsageError } from '../errors/index.js';
import { defaultDbPath } from '../registry/index.js';
import { didYouMean } from '../util/did-you-mean.js';
import { parseDuration } from '../util/duration.js';
import { redactUrl } from '../util/redact-url.js';
import { isLoopbackHost } from '../util/loopback-host.js';
import type { LogFormat } from './logger.js';

/** What to do with a publish the ACL refuses: MQTT 3.1.1 has no negative ack. */
export type DeniedPublishPolicy = 'disconnect' | 'drop';

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
  /** The ops HTTP port: loopback unless the operator says otherwise; elsewhere it needs TLS (`httpTlsCert`, `httpTlsKey`). */
  readonly httpHost: string;
  /** PEM certificate and key of the ops HTTP port: it then serves HTTPS. Required when `httpHost` is not loopback. */
  readonly httpTlsCert: string | null;
  readonly httpTlsKey: string | null;
  /** Connections to the ops HTTP port, in total and from one address (an IPv6 /64 counts as one); beyond them a newcomer is reset. */
  readonly httpMaxConnections: number;
  readonly httpMaxConnectionsPerAddress: number;
  /** An ops HTTP connection silent this long (no request yet, or between keep-alive requests), or a request slower than this to arrive, is closed. */
  readonly httpIdleTimeoutMs: number;
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
  /** Claim requests per claim (all its devices together): burst, then refill rate. */
  readonly claimBurst: number;
  readonly claimPerSec: number;
  /** Claim requests per address (IPv6: per /64): burst, then refill rate. */
  readonly claimAddressBurst: number;
  readonly claimAddressPerSec: number;
  /** Accepted claim CONNECTs per claim (all its units together), then per address: burst, then refill rate. */
  readonly claimConnectBurst: number;
  readonly claimConnectPerSec: number;
  readonly claimConnectAddressBurst: number;
  readonly claimConnectAddressPerSec: number;
  /** Renewals per device: burst, then refill rate. */
  readonly renewBurst: number;
  readonly renewPerSec: number;
  /**
   * How long a rotated-out (`previous`) refresh credential stays good after its
   * rotation, for a device that lost the answer; presented later, it is theft.
   */
  readonly refreshGraceMs: number;
  /** A renewal request re-sent with the same requestId within this window gets the same answer (no second token). */
  readonly renewRepeatWindowMs: number;
  /** Bound on the answers kept for that (oldest dropped first). */
  readonly renewRepeatMaxEntries: number;
  readonly revocationPollMs: number;
  readonly drainTimeoutMs: number;
  readonly maxInflightInbound: number;
  /** Sockets not yet authenticated, in total ("auto": a quarter of the open-files limit, at most 10,000) and per address. */
  readonly maxUnauthenticated: number | 'auto';
  readonly maxUnauthenticatedPerAddress: number;
  /** Credential checks per second (and burst), node-wide, for addresses that failed one in the last minute. */
  readonly verifyBudgetPerSec: number;
  readonly verifyBudgetBurst: number;
  /** Subscription filters one connection may hold; beyond it, SUBACK 0x80. */
  readonly maxSubscriptionsPerConnection: number;
  /** Accepted access tokens whose verification is remembered for reconnects (verified-tokens.ts); 0: off. */
  readonly verifiedTokenCache: number;
  /** Refused logins (per address) and refused renewals (per device) written one by one per window; the rest are counted. */
  readonly auditRowsPerKey: number;
  /** Such rows per window for all addresses and devices together. */
  readonly auditRowsPerWindow: number;
  /** The window: one summary row per address (or device) and window for what was counted. */
  readonly auditSummaryMs: number;
  /** Renewals refused for rate on one session before the broker closes it. */
  readonly renewAbuseLimit: number;
  /** Audit events older than this are deleted by the broker's maintenance pass (0: kept for good). */
  readonly auditRetentionMs: number;
  /** Renewal events (one per renewal, the bulk of a steady fleet's log) older than this are deleted (0: as auditRetentionMs). */
  readonly renewalAuditRetentionMs: number;
  /** How often the broker prunes the registry, gives space back and refreshes the registry gauges. */
  readonly maintenanceIntervalMs: number;
  /** Largest packet an authenticated client may send (remaining length, bytes); see broker/limits.ts. */
  readonly maxPacketBytes: number;
  /** Per-client outbound bounds: past either, QoS 0 deliveries to that client are dropped. */
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  /** A client over maxQueuedBytes this long is disconnected. */
  readonly queueStallMs: number;
  /** Retained messages per device (the last retained publish on a topic owns it), their bytes, and the largest retained payload; see broker/limits.ts. */
  readonly maxRetainedPerDevice: number;
  readonly maxRetainedBytesPerDevice: number;
  readonly maxRetainedPayloadBytes: number;
  readonly logLevel: string;
  /** `pretty` on a terminal by default, JSON otherwise. */
  readonly logFormat: LogFormat;
  /** Refused-CONNECT log lines per address: burst, then rate; and all addresses together per second. */
  readonly refusalLogBurst: number;
  readonly refusalLogPerSec: number;
  readonly refusalLogMaxPerSec: number;
  /** Broker processes on this host sharing the listeners ("auto": one per CPU); above 1 needs `bus`. */
  readonly workers: number | 'auto';
  /** `redis://HOST:PORT[/DB]`: the bus that joins workers and nodes (null: one process, no Redis). */
  readonly bus: string | null;
  /** PEM file of the CA that signs a `rediss://` bus's certificate (null: the system's CAs). */
  readonly busCa: string | null;
  /** Allows a bus off loopback without both TLS and a password (logged at every start, shown in /readyz). */
  readonly busInsecure: boolean;
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
  httpTlsCert: null,
  httpTlsKey: null,
  httpMaxConnections: 1024,
  httpMaxConnectionsPerAddress: 64,
  httpIdleTimeoutMs: 10_000,
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
  claimBurst: 200,
  claimPerSec: 20,
  claimAddressBurst: 100,
  claimAddressPerSec: 10,
  claimConnectBurst: 200,
  claimConnectPerSec: 20,
  claimConnectAddressBurst: 100,
  claimConnectAddressPerSec: 10,
  renewBurst: 3,
  renewPerSec: 0.5,
  refreshGraceMs: 600_000,
  renewRepeatWindowMs: 60_000,
  renewRepeatMaxEntries: 10_000,
  revocationPollMs: 50,
  drainTimeoutMs: 30_000,
  maxInflightInbound: 100,
  maxUnauthenticated: 'auto',
  maxUnauthenticatedPerAddress: 256,
  maxSubscriptionsPerConnection: 100,
  verifiedTokenCache: 100_000,
  verifyBudgetPerSec: 200,
  verifyBudgetBurst: 400,
  auditRowsPerKey: 3,
  auditRowsPerWindow: 600,
  auditSummaryMs: 60_000,
  renewAbuseLimit: 10,
  auditRetentionMs: 90 * 86_400_000,
  renewalAuditRetentionMs: 7 * 86_400_000,
  maintenanceIntervalMs: 60_000,
  maxPacketBytes: 256 * 1024,
  maxQueuedMessages: 1000,
  maxQueuedBytes: 4 * 1024 * 1024,
  maxRetainedPerDevice: 100,
  maxRetainedBytesPerDevice: 1024 * 1024,
  maxRetainedPayloadBytes: 64 * 1024,
  queueStallMs: 10_000,
  logLevel: 'info',
  logFormat: 'auto',
  refusalLogBurst: 5,
  refusalLogPerSec: 0.1,
  refusalLogMaxPerSec: 10,
  workers: 1,
  bus: null,
  busCa: null,
  busInsecure: false,
};

type Raw = Record<string, unknown>;

/** How a setting was given, as the user wrote it (a flag, a variable, a config file key): errors name it so. */
export interface SettingName {
  readonly name: string;
  /** Where it was written, when that is not in the name itself (a config file). */
  readonly where?: string;
}
export type SettingNamer = (key: string) => SettingName;

const envName = (key: string) => `CREDBROKER_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
const flagName = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Environment variables read by `serve`: CREDBROKER_<FIELD> in upper snake case, e.g. CREDBROKER_MQTT_PORT. */
function fromEnv(env: NodeJS.ProcessEnv): Raw {
  // Test-only weakening is passed to startBroker in code; a variable that looks like it must not be mistaken for a switch.
  const weakening = Object.keys(env).find((k) => /^CREDBROKER_WEAKEN(_|$)/i.test(k));
  if (weakening) throw new UsageError(`${weakening} is not a setting: no configuration turns a check off (unset it)`, 'ERR_CONFIG');
  const out: Raw = {};
  for (const key of Object.keys(DEFAULT_CONFIG)) {
    if (env[envName(key)] !== undefined) out[key] = env[envName(key)];
  }
  if (env.CREDBROKER_DB) out.db = env.CREDBROKER_DB;
  return out;
}

function fromFile(path: string): Raw {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
  } catch (err) {
    throw new UsageError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code}`, 'ERR_CONFIG');
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`config file ${path} is not valid JSON ${jsonErrorPlace(text, (err as Error).message)}`, 'ERR_CONFIG');
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new UsageError(`config file ${path} must hold one JSON object of settings, e.g. {"mqttPort": 1883}`, 'ERR_CONFIG');
  }
  return obj as Raw;
}

/** `at line 3, column 1: Expected double-quoted property name (a trailing comma?)` from V8's "at position N". */
function jsonErrorPlace(text: string, message: string): string {
  const why = message.replace(/ in JSON at position \d+.*$/, '').replace(/^Unexpected end of JSON input$/, 'the file ends too early');
  const m = / at position (\d+)/.exec(message);
  if (!m) return `: ${why}`;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  const trailingComma = /,\s*$/.test(before) && /^\s*[}\]]/.test(text.slice(pos));
  return `at line ${line}, column ${column}: ${why}${trailingComma ? ' (a trailing comma before it?)' : ''}`;
}

/**
 * Builds the broker configuration: defaults < config file < environment < flags.
 * Every value is validated; an unknown key or a bad value is a one-line error that
 * names the setting the way the user gave it (`--mqtt-port`, `CREDBROKER_MQTT_PORT`,
 * or the key in the config file).
 */
export function loadConfig(flags: Raw = {}, env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  return loadConfigWithSources(flags, env).config;
}

/** `loadConfig`, plus the settings that were given (by a flag, the environment or the config file) and how. */
export function loadConfigWithSources(flags: Raw = {}, env: NodeJS.ProcessEnv = process.env): { config: BrokerConfig; given: ReadonlyMap<string, SettingName> } {
  const given = new Map<string, SettingName>();
  const file = typeof flags.config === 'string' ? fromFile(flags.config) : {};
  for (const k of Object.keys(file)) given.set(k, { name: k, where: `config file ${String(flags.config)}` });
  const fromEnvironment = fromEnv(env);
  for (const k of Object.keys(fromEnvironment)) given.set(k, { name: k === 'db' ? 'CREDBROKER_DB' : envName(k) });
  const merged: Raw = { ...file, ...fromEnvironment };
  for (const [k, v] of Object.entries(flags)) {
    if (v === undefined || k === 'config') continue;
    merged[k] = v;
    given.set(k, { name: flagName(k) });
  }
  return { config: validate(merged, (key) => given.get(key) ?? { name: key }), given };
}

export function validate(raw: Raw, named: SettingNamer = (key) => ({ name: key })): BrokerConfig {
  const out: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in DEFAULT_CONFIG)) {
      const { where } = named(key);
      const hint = didYouMean(key, Object.keys(DEFAULT_CONFIG));
      throw new UsageError(`unknown config setting "${key}"${where ? ` in ${where}` : ''}${hint ? `: did you mean "${hint}"?` : ' (see the settings table in README.md)'}`, 'ERR_CONFIG');
    }
    out[key] = coerce(key as keyof BrokerConfig, value, named(key));
  }
  const c = out as unknown as BrokerConfig;
  // A setting in a rule between two settings, named as the user gave it (its flag when not given, or given to `validate` directly).
  const label = (key: string) => {
    const n = named(key);
    return n.where ? `${n.name} (${n.where})` : n.name === key ? flagName(key) : n.name;
  };
  if ((c.tlsCert === null) !== (c.tlsKey === null)) throw new UsageError(`TLS needs both ${label('tlsCert')} and ${label('tlsKey')}`, 'ERR_CONFIG');
  if (c.tlsCert && c.tlsPort === null) out.tlsPort = 8883;
  if (c.tlsPort !== null && !c.tlsCert) throw new UsageError(`${label('tlsPort')} needs ${label('tlsCert')} and ${label('tlsKey')}`, 'ERR_CONFIG');
  if ((c.httpTlsCert === null) !== (c.httpTlsKey === null)) throw new UsageError(`ops HTTP TLS needs both ${label('httpTlsCert')} and ${label('httpTlsKey')}`, 'ERR_CONFIG');
  // Off loopback the port carries operator passwords, session cookies and API tokens: never in clear text.
  if (c.httpPort !== null && c.httpTlsCert === null && !isLoopbackHost(c.httpHost)) {
    throw new UsageError(`${label('httpHost')} ${c.httpHost} is not loopback: the operator API is served there only over TLS: give ${label('httpTlsCert')} and ${label('httpTlsKey')} (see certs/README.md)`, 'ERR_CONFIG');
  }
  if (c.auditSummaryMs < 100) throw new UsageError(`invalid ${label('auditSummaryMs')} ${c.auditSummaryMs}: at least 100 ms`, 'ERR_CONFIG');
  if (c.httpIdleTimeoutMs < 100) throw new UsageError(`invalid ${label('httpIdleTimeoutMs')} ${c.httpIdleTimeoutMs}: at least 100 ms`, 'ERR_CONFIG');
  if (c.maintenanceIntervalMs < 100) throw new UsageError(`invalid ${label('maintenanceIntervalMs')} ${c.maintenanceIntervalMs}: at least 100 ms`, 'ERR_CONFIG');
  if (c.maxQueuedBytes < c.maxPacketBytes) throw new UsageError(`${label('maxQueuedBytes')} (${c.maxQueuedBytes}) must be at least ${label('maxPacketBytes')} (${c.maxPacketBytes}): a client could not be sent one packet of the largest size`, 'ERR_CONFIG');
  if (c.busCa !== null && (c.bus === null || new URL(c.bus).protocol !== 'rediss:')) throw new UsageError(`${label('busCa')} needs a TLS bus: ${label('bus')} rediss://HOST:PORT`, 'ERR_CONFIG');
  if (c.workers !== 1 && c.bus === null) throw new UsageError(`${label('workers')} ${c.workers} needs ${label('bus')} redis://HOST:PORT: workers share delivery, sessions and retained messages through it`, 'ERR_CONFIG');
  // A bucket that never refills is never swept: one per address would be kept for good.
  for (const k of ['refusalLogPerSec', 'refusalLogMaxPerSec', 'claimPerSec', 'claimAddressPerSec', 'claimConnectPerSec', 'claimConnectAddressPerSec'] as const) if (!(c[k] > 0)) throw new UsageError(`invalid ${label(k)} ${c[k]}: expected a rate above 0`, 'ERR_CONFIG');
  return out as unknown as BrokerConfig;
}

const PORTS = new Set(['mqttPort', 'tlsPort', 'wsPort', 'httpPort']);
const DURATIONS = new Set([
  'connectTimeoutMs', 'revocationPollMs', 'drainTimeoutMs', 'refreshGraceMs',
  'auditRetentionMs', 'renewalAuditRetentionMs', 'maintenanceIntervalMs', 'auditSummaryMs', 'queueStallMs',
  'renewRepeatWindowMs', 'httpIdleTimeoutMs',
]);
const STRINGS = new Set(['db', 'host', 'httpHost', 'tlsCert', 'tlsKey', 'httpTlsCert', 'httpTlsKey', 'busCa']);
/** pino's levels. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** Settings that must be whole numbers within a range (a fraction of a byte or message means a typo). */
const INTEGER_RANGES: Partial<Record<keyof BrokerConfig, readonly [number, number]>> = {
  // MQTT 3.1.1 cannot encode more than 268,435,455; under 1 KiB not even a token fits.
  maxPacketBytes: [1024, 268_435_455],
  maxQueuedMessages: [1, 10_000_000],
  maxQueuedBytes: [64 * 1024, 2 ** 40],
  maxRetainedPerDevice: [0, 10_000_000],
  maxRetainedBytesPerDevice: [0, 2 ** 40],
  maxRetainedPayloadBytes: [0, 268_435_455],
  // A burst of 0 would refuse every claim for good.
  claimBurst: [1, 10_000_000],
  claimAddressBurst: [1, 10_000_000],
  claimConnectBurst: [1, 10_000_000],
  claimConnectAddressBurst: [1, 10_000_000],
  verifiedTokenCache: [0, 10_000_000],
  httpMaxConnections: [1, 1_000_000],
  httpMaxConnectionsPerAddress: [1, 1_000_000],
};

function coerce(key: keyof BrokerConfig, value: unknown, { name, where }: SettingName): unknown {
  const bad = (why: string): never => {
    throw new UsageError(`${where ? `${where}: ` : ''}invalid ${name} ${JSON.stringify(value)}: ${why}`, 'ERR_CONFIG');
  };
  if (PORTS.has(key)) {
    if (value === null || value === 'off' || value === false) return null;
    const n = toNumber(value);
    return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : bad('expected a port number 0–65535 or "off"');
  }
  if (STRINGS.has(key)) {
    if (value === null && (key === 'tlsCert' || key === 'tlsKey' || key === 'httpTlsCert' || key === 'httpTlsKey' || key === 'busCa')) return null;
    return typeof value === 'string' && value.length > 0 ? value : bad('expected a non-empty string');
  }
  if (key === 'wsOrigins') return origins(value, bad);
  if (key === 'workers') {
    if (value === 'auto') return value;
    const n = toNumber(value);
    return Number.isInteger(n) && n >= 1 && n <= 1024 ? n : bad('expected "auto" or a whole number from 1 to 1024');
  }
  // The URL may hold Redis' password: the error line shows it masked.
  if (key === 'bus') return value === null ? null : busUrl(value, (why) => { throw new UsageError(`${where ? `${where}: ` : ''}invalid ${name} ${JSON.stringify(typeof value === 'string' ? redactUrl(value) : value)}: ${why}`, 'ERR_CONFIG'); });
  // A flag gives `true`; the environment gives text: only these exact spellings, never a truthy guess.
  if (key === 'busInsecure') return value === true || value === 'true' ? true : value === false || value === 'false' ? false : bad('expected true or false');
  if (key === 'maxUnauthenticated' && value === 'auto') return value;
  if (key === 'maxUnauthenticated' || key === 'maxUnauthenticatedPerAddress') {
    const n = toNumber(value);
    return Number.isInteger(n) && n >= 1 ? n : bad(key === 'maxUnauthenticated' ? 'expected "auto" or a whole number ≥ 1' : 'expected a whole number ≥ 1');
  }
  if (key === 'logFormat') return value === 'auto' || value === 'json' || value === 'pretty' ? value : bad('expected "pretty", "json" or "auto"');
  if (key === 'deniedPublish') return value === 'disconnect' || value === 'drop' ? value : bad('expected "disconnect" or "drop"');
  if (key === 'logLevel') return typeof value === 'string' && LOG_LEVELS.includes(value) ? value : bad(`expected one of ${LOG_LEVELS.join(', ')}`);
  if (DURATIONS.has(key) && typeof value === 'string' && /[a-z]$/.test(value)) return parseDuration(value, `${where ? `${where}: ` : ''}${name}`);
  const n = toNumber(value);
  const range = INTEGER_RANGES[key];
  if (range) return Number.isInteger(n) && n >= range[0] && n <= range[1] ? n : bad(`expected a whole number from ${range[0]} to ${range[1]}`);
  return Number.isFinite(n) && n >= 0 ? n : bad('expected a non-negative number');
}

/** A list of web origins (`https://app.example.com`): an array, or a comma-separated string (flag, environment). */
function origins(value: unknown, bad: (why: string) => never): string[] {
  const list: unknown = typeof value === 'string' ? value.split(',').map((o) => o.trim()).filter(Boolean) : value;
  if (!Array.isArray(list)) return bad('expected a list of origins');
  // An origin is scheme://host[:port] exactly, as a browser sends it: no path, no trailing slash.
  return list.map((o: unknown) => (typeof o === 'string' && canonicalOrigin(o) === o.toLowerCase() ? o.toLowerCase() : bad(`${JSON.stringify(o)} is not an origin like https://app.example.com`)));
}

/** `redis://[user:password@]HOST[:PORT][/DB]` (or `rediss://`, Redis over TLS), as ioredis reads it. */
function busUrl(value: unknown, bad: (why: string) => never): string {
  const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : null;
  const hint = 'expected redis://HOST:PORT[/DB], or rediss:// for TLS; a user and password go before HOST';
  if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || !url.hostname || url.search || url.hash) return bad(hint);
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,5}$/.test(url.pathname)) return bad(`${hint} (DB is a database number)`);
  return value as string;
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
