import type { ChangeStore } from '../interface.js';
import type { Change, ChangeKind } from '../types.js';
import { LOCKS } from './migrations.js';
import type { Sql } from './pool.js';

interface Row { seq: number; at: number; kind: ChangeKind; device_id: string | null; jti: string | null }

const toChange = (r: Row): Change => ({ seq: r.seq, at: r.at, kind: r.kind, deviceId: r.device_id, jti: r.jti });

/** What one read of the feed returns at most: a follower far behind catches up in batches. */
export const FEED_BATCH = 5_000;

export class PgChanges implements ChangeStore {
  constructor(private readonly sql: Sql) {}

  /**
   * The seq is drawn after the changes lock, which is held until commit: changes
   * commit in seq order on every node, so a follower that read up to seq n never
   * later finds a smaller one committed (a plain sequence would let a transaction
   * that drew 10 commit after one that drew 11). The trigger NOTIFYs at commit.
   */
  async append(kind: ChangeKind, deviceId: string | null, jti: string | null = null, at = Date.now()): Promise<void> {
    await this.sql.write(`INSERT INTO changes (at, kind, device_id, jti) SELECT $1, $2, $3, $4 FROM pg_advisory_xact_lock(${LOCKS.changes})`,
      [at, kind, deviceId, jti]);
  }

  async since(seq: number, limit: number | null = null): Promise<Change[]> {
    const rows = limit === null
      ? await this.sql.rows<Row>('SELECT * FROM changes WHERE seq > $1 ORDER BY seq', [seq])
      : await this.sql.rows<Row>('SELECT * FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2', [seq, limit]);
    return rows.map(toChange);
  }

  async prune(before: number, limit: number): Promise<number> {
    return this.sql.run('DELETE FROM changes WHERE seq IN (SELECT seq FROM changes WHERE at < $1 ORDER BY seq LIMIT $2)', [before, limit]);
  }

  async latest(): Promise<number> {
    const [r] = await this.sql.rows<{ s: number | null }>('SELECT max(seq) AS s FROM changes');
    return r?.s ?? 0;
  }
}
