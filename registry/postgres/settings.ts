import { DEFAULT_SETTINGS } from '../defaults.js';
import type { SettingsStore } from '../interface.js';
import type { Settings } from '../types.js';
import type { Sql } from './pool.js';

export class PgSettings implements SettingsStore {
  constructor(private readonly sql: Sql) {}

  async read(): Promise<Settings> {
    const rows = await this.sql.rows<{ key: string; value: string }>('SELECT key, value FROM settings');
    return { ...DEFAULT_SETTINGS, ...Object.fromEntries(rows.map((r) => [r.key, JSON.parse(r.value) as unknown])) } as Settings;
  }

  async seed(values: Partial<Settings>): Promise<void> {
    const entries = Object.entries({ ...DEFAULT_SETTINGS, ...values });
    await this.sql.run('INSERT INTO settings (key, value) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (key) DO NOTHING',
      [entries.map(([k]) => k), entries.map(([, v]) => JSON.stringify(v))]);
  }
}
