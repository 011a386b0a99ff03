import { statSync } from 'node:fs';
import type { Db } from './db.js';
import type { RegistryStats, ScrubReport } from '../types.js';


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
    const autoVacuum = AUTO_VACUUM[this.db.pragma('auto_vacuum', { simple: true }) as number] ?? 'none';
    return {
      ...this.fileSizes(),
      pageSize: this.db.pragma('page_size', { simple: true }) as number,
      pages: this.db.pragma('page_count', { simple: true }) as number,
      freePages: this.db.pragma('freelist_count', { simple: true }) as number,
      autoVacuum,
      deadRows: null,
      upkeep: `auto_vacuum ${autoVacuum}: free pages go back to the file system in maintenance passes; the WAL is checkpointed into the file`,
      rows,
      tableBytes: null,
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

  /**
   * Copies the WAL into the main file and truncates the WAL to zero bytes, so
   * that content already overwritten in place (a retired private key, zeroed by
   * secure_delete) is gone from both files. Not complete when a reader kept part
   * of the WAL; the next checkpoint (at the latest when the last connection closes) takes it.
   */
  scrub(): ScrubReport {
    const [r] = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
    return r?.busy === 0
      ? { complete: true, detail: 'WAL checkpointed into the file and truncated to 0 bytes' }
      : { complete: false, detail: `WAL checkpoint: a reader holds ${(r?.log ?? 0) - (r?.checkpointed ?? 0)} of its ${r?.log ?? 0} WAL frames; the next checkpoint takes them` };
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
