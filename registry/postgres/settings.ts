import { DEFAULT_SETTINGS, SECRET } from '../defaults.js';
import type { SettingsStore } from '../interface.js';
import type { Settings } from '../types.js';
import type { Sql } from './pool.js';

export class PgSettings implements SettingsStore {
  constructor(private readonly sql: Sql) {}

  async read(): Promise<Settings> {
    const rows = await this.sql.rows<{ key: string; value: string }>(`SELECT key, value FROM settings WHERE key NOT LIKE '${SECRET}%'`);
    return { ...DEFAULT_SETTINGS, ...Object.fromEntries(rows.map((r) => [r.key, JSON.parse(r.value) as unknown])) } as Settings;
  }

  async seed(values: Partial<Settings>): Promise<void> {
    const entries = Object.entries({ ...DEFAULT_SETTINGS, ...values });
    await this.sql.run('INSERT INTO settings (key, value) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (key) DO NOTHING',
      [entries.map(([k]) => k), entries.map(([, v]) => JSON.stringify(v))]);
  }

  async readSecret(name: string): Promise<string | null> {
    const [r] = await this.sql.rows<{ value: string }>('SELECT value FROM settings WHERE key = $1', [SECRET + name]);
    return r?.value ?? null;
  }

  async swapSecret(name: string, expected: string | null, value: string): Promise<boolean> {
    const rows = expected === null
      ? await this.sql.rows('INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING key', [SECRET + name, value])
      : await this.sql.rows('UPDATE settings SET value = $1 WHERE key = $2 AND value = $3 RETURNING key', [value, SECRET + name, expected]);
    return rows.length === 1;
  }
}
