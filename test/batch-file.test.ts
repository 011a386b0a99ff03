import t from 'tap';
import { csvRecords, parseCsv, plainCsvRecords } from '../provisioning/batch-file.js';

const shape = (records: ReturnType<typeof csvRecords>) => records.map((r) => ({ record: r.record, lines: r.info.lines }));

t.test('a batch of ids and profile names reads the same with or without the general CSV parser', async (t) => {
  // Every text over this alphabet: empty lines, trailing commas, a last line without a newline, a byte order mark.
  const alphabet = ['a', 'B', '7', '.', ':', '_', '-', ',', ',', '\n', '\n', '\n'];
  let seed = 42;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  let differ = 0;
  for (let n = 0; n < 3000; n++) {
    let text = n % 7 === 0 ? '\uFEFF' : '';
    const len = Math.floor(next() * 60);
    for (let k = 0; k < len; k++) text += alphabet[Math.floor(next() * alphabet.length)];
    const plain = plainCsvRecords(text);
    if (!plain) { t.fail(`not read as plain: ${JSON.stringify(text)}`); continue; }
    let general: ReturnType<typeof shape> | string;
    try {
      general = shape(csvRecords(text));
    } catch (err) {
      general = (err as Error).message;
    }
    if (JSON.stringify(shape(plain)) !== JSON.stringify(general)) {
      differ++;
      t.same(shape(plain), general, JSON.stringify(text));
    }
  }
  t.equal(differ, 0, '3,000 texts, the same records and line numbers');
});

t.test('anything quoting, trimming or another line end could change goes to the general parser', async (t) => {
  for (const text of ['id\n"pump-1"\n', 'id\r\npump-1\r\n', 'id\n pump-1\n', 'id\npump-1\t\n', 'id;profile\npump-1;sensor\n', 'id\npümpe\n']) {
    t.equal(plainCsvRecords(text), null, JSON.stringify(text));
  }
  t.same(parseCsv('id,profile\r\n"pump-1", sensor\r\n\r\npump-2,\r\n'), [
    { line: 2, id: 'pump-1', profile: 'sensor' },
    { line: 4, id: 'pump-2', profile: undefined },
  ]);
});

t.test('a plain batch gives its rows with their lines, and short rows as problems', async (t) => {
  t.same(parseCsv('\uFEFFid,profile\npump-1,sensor\n\npump-2,\npump-3\n'), [
    { line: 2, id: 'pump-1', profile: 'sensor' },
    { line: 4, id: 'pump-2', profile: undefined },
    { line: 5, id: 'pump-3', problem: 'has 1 field(s), the header has 2' },
  ]);
});
