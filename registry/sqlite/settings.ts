import type { Db } from './db.js';
import type { Settings } from '../types.js';
import { DEFAULT_SETTINGS, SECRET } from '../defaults.js';


export class SettingsStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  read(): Settings {
    const rows = this.db.prepare<[], { key: string; value: string }>(`SELECT key, value FROM settings WHERE key NOT LIKE '${SECRET}%'`).all();
    const stored = Object.fromEntries(rows.map((r) => [r.key, JSON.parse(r.value) as unknown]));
    return { ...DEFAULT_SETTINGS, ...stored } as Settings;
  }

  /** Writes only keys not yet set: settings are fixed at first use. */
  seed(values: Partial<Settings>): void {
    const stmt = this.db.prepare('INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)');
    for (const [k, v] of Object.entries({ ...DEFAULT_SETTINGS, ...values })) stmt.run(k, JSON.stringify(v));
  }

  readSecret(name: string): string | null {
    return this.db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?').get(SECRET + name)?.value ?? null;
  }

  swapSecret(name: string, expected: string | null, value: string): boolean {
    const res = expected === null
      ? this.db.prepare('INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)').run(SECRET + name, value)
      : this.db.prepare('UPDATE settings SET value = ? WHERE key = ? AND value = ?').run(value, SECRET + name, expected);
    return res.changes === 1;
  }
}
