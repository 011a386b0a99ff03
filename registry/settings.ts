import type { Db } from './db.js';
import type { Settings } from './types.js';
import { DEFAULT_SETTINGS } from './defaults.js';

export type { Settings } from './types.js';
export { DEFAULT_SETTINGS } from './defaults.js';

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
