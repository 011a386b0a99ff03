// The broker's audit buffer against a registry another process holds locked:
// a flush that cannot get the write lock keeps its rows for the next flush.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { AuditBuffer } from '../broker/audit-buffer.js';
import { createLogger } from '../broker/index.js';
import { openRegistry } from '../registry/index.js';
import { sqliteOf } from './helpers/sqlite.js';

t.test('rows survive a flush refused by a locked registry', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-audit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'registry.db');
  const api = await openRegistry(db);
  t.teardown(() => api.close());
  const reg = sqliteOf(api);
  reg.db.pragma('busy_timeout = 50'); // the broker waits 10 s; the test need not
  const logged: string[] = [];
  const log = createLogger('info', new Writable({ write(c, _e, cb) { logged.push(String(c)); cb(); } }));
  const audit = new AuditBuffer(api, log, 3_600_000, 3);

  const other = new Database(db); // another writer, as the CLI would be
  t.teardown(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  for (let i = 0; i < 5; i++) audit.add('broker', 'auth.refused', `d${i}`, { reason: 'bad_signature' });
  await audit.flush();
  t.equal(reg.audit.query().length, 0, 'nothing written while locked');
  t.match(logged.join(''), /audit flush failed; will retry/);

  other.exec('COMMIT');
  await audit.close();
  const rows = reg.audit.query();
  t.same(rows.filter((r) => r.action === 'auth.refused').map((r) => r.deviceId).sort(), ['d0', 'd1', 'd2'], 'the kept rows land on the next flush');
  t.same(rows.find((r) => r.action === 'audit.suppressed')?.details, { rows: 2 }, 'rows past the cap are counted, not lost silently');
});
