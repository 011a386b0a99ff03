// The gc bench (bench/gc.ts, issue #23 item 5) reads a broker's GC cost from
// watchGc: it must count the scavenges and the mark-compacts V8 runs, with
// their pause time. Real collections of this process, caused here.
import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { watchGc } from '../bench/lib/gc-watch.js';
import { until } from './helpers/wait.js';

t.test('watchGc counts scavenges and mark-compacts, and their pause time', async (t) => {
  const totals = watchGc();
  t.same([totals.minor, totals.major], [0, 0], 'nothing counted before a collection');

  // Short-lived garbage fills the young generation: V8 scavenges it.
  let filled = 0;
  await until('a scavenge is counted', async () => {
    let garbage: { i: number }[] = [];
    for (let i = 0; i < 100_000; i++) garbage.push({ i });
    filled = garbage.length;
    garbage = [];
    await new Promise((r) => setImmediate(r));
    return totals.minor > 0;
  });
  t.equal(filled, 100_000, 'garbage made');
  t.ok(totals.minorMs > 0, 'scavenge pause time summed');

  // A full collection, asked for: a mark-compact.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const before = totals.major;
  gc();
  await until('the mark-compact is counted', () => totals.major > before);
  t.ok(totals.majorMs > 0, 'mark-compact pause time summed');
});
