import type { Db } from './db.js';
import type { SigningAlg } from './keys.js';

/** Registry-wide settings chosen at `init` (or defaulted on first use). */
export interface Settings {
  /** `iss` of every token. */
  readonly issuer: string;
  /** `aud` of every token: the broker. */
  readonly audience: string;
  readonly alg: SigningAlg;
  /** Upper bound on any access token's lifetime (ms), enforced at minting. */
  readonly maxTokenTtlMs: number;
  /** Default lifetime of a device's refresh credential (ms). */
  readonly credentialTtlMs: number;
}

export const DEFAULT_SETTINGS: Settings = {
  issuer: 'urn:credbroker',
  audience: 'credbroker-mqtt',
  alg: 'ES256',
  maxTokenTtlMs: 24 * 3_600_000,
  credentialTtlMs: 365 * 86_400_000,
};

export class SettingsStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  read(): Settings {
    const rows = this.db.prepare<[], { key: string; value: string }>('SELECT key, value FROM settings').all();
    const stored = Object.fromEntries(rows.map((r) => [r.key, JSON.parse(r.value) as unknown]));
    return { ...DEFAULT_SETTINGS, ...stored } as Settings;
  }

  /** Writes only keys not yet set: settings are fixed at first use. */
  seed(values: Partial<Settings>): void {
    const stmt = this.db.prepare('INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)');
    for (const [k, v] of Object.entries({ ...DEFAULT_SETTINGS, ...values })) stmt.run(k, JSON.stringify(v));
  }
}
