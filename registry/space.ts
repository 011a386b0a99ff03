import { statSync } from 'node:fs';
import type { Db } from './db.js';

/** What `credbroker show --stats` and the broker's registry gauges report. */
export interface RegistryStats {
  /** Bytes of the registry file and of its write-ahead log (0 when there is none). */
  readonly fileBytes: number;
  readonly walBytes: number;
  readonly pageSize: number;
  readonly pages: number;
  /** Pages inside the file that hold nothing (given back by `reclaim`). */
  readonly freePages: number;
  readonly autoVacuum: 'none' | 'full' | 'incremental';
  /** Rows per table, by table name. */
  readonly rows: Readonly<Record<string, number>>;
}

const AUTO_VACUUM = ['none', 'full', 'incremental'] as const;

/** The registry file's size and what fills it; giving free pages back to the file system. */
export class RegistrySpace {
  private readonly tablesStmt;
  constructor(private readonly db: Db) {
    this.tablesStmt = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
  }

  /** Bytes of the file and its WAL, from the file system (cheap: no table is read). */
  fileSizes(): { fileBytes: number; walBytes: number } {
    return { fileBytes: sizeOf(this.db.name), walBytes: sizeOf(`${this.db.name}-wal`) };
  }

  /** Sizes plus rows per table. Counting reads every table's smallest index: keep it off hot paths. */
  stats(): RegistryStats {
    const rows: Record<string, number> = {};
    for (const { name } of this.tablesStmt.all()) {
      rows[name] = (this.db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n;
    }
    return {
      ...this.fileSizes(),
      pageSize: this.db.pragma('page_size', { simple: true }) as number,
      pages: this.db.pragma('page_count', { simple: true }) as number,
      freePages: this.db.pragma('freelist_count', { simple: true }) as number,
      autoVacuum: AUTO_VACUUM[this.db.pragma('auto_vacuum', { simple: true }) as number] ?? 'none',
      rows,
    };
  }

  /**
   * Gives free pages back (`incremental_vacuum`, at most `maxPages` per call) and
   * copies the WAL into the file with a PASSIVE checkpoint: it never waits for a
   * reader or writer, so the broker's event loop is never held by one. When the
   * checkpoint completes, the next write restarts the WAL, truncated to its size
   * limit (db.ts). Returns the pages given back.
   */
  reclaim(maxPages = 4096): number {
    const before = this.db.pragma('freelist_count', { simple: true }) as number;
    if (before > 0) this.db.pragma(`incremental_vacuum(${maxPages})`);
    const after = this.db.pragma('freelist_count', { simple: true }) as number;
    this.db.pragma('wal_checkpoint(PASSIVE)');
    return before - after;
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
