import type { Db } from './db.js';
import type { Change, ChangeKind } from '../types.js';


interface Row { seq: number; at: number; kind: ChangeKind; device_id: string | null; jti: string | null }

/**
 * The change feed: a monotonic sequence another process (the broker) polls to
 * learn about revocations, restores and key rotations without scanning tables.
 */
export class ChangeFeed {
  private readonly insertStmt;
  private readonly sinceStmt;
  private readonly latestStmt;
  private readonly pruneStmt;
  constructor(db: Db) {
    // AUTOINCREMENT: a pruned sequence number is never handed out again, so a follower's position stays valid.
    this.pruneStmt = db.prepare<[number, number]>('DELETE FROM changes WHERE seq IN (SELECT seq FROM changes WHERE at < ? ORDER BY seq LIMIT ?)');
    this.insertStmt = db.prepare('INSERT INTO changes (at, kind, device_id, jti) VALUES (?, ?, ?, ?)');
    this.sinceStmt = db.prepare<[number], Row>('SELECT * FROM changes WHERE seq > ? ORDER BY seq');
    this.latestStmt = db.prepare<[], { s: number | null }>('SELECT max(seq) AS s FROM changes');
  }

  append(kind: ChangeKind, deviceId: string | null, jti: string | null = null, at = Date.now()): void {
    this.insertStmt.run(at, kind, deviceId, jti);
  }

  since(seq: number): Change[] {
    return this.sinceStmt.all(seq).map((r) => ({ seq: r.seq, at: r.at, kind: r.kind, deviceId: r.device_id, jti: r.jti }));
  }

  /** Deletes up to `limit` changes older than `before` (ms); returns how many went. */
  prune(before: number, limit: number): number {
    return this.pruneStmt.run(before, limit).changes;
  }

  latest(): number {
    return this.latestStmt.get()?.s ?? 0;
  }
}
