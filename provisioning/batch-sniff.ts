import { UsageError } from '../errors/index.js';

/** What a spreadsheet tends to save, and how to get a batch file out of it instead. */
const SAVE_AS_CSV = 'in the spreadsheet, save as "CSV UTF-8 (comma delimited)"';

/**
 * Refuses, with one line saying what the file is, the batch files a spreadsheet or
 * another tool produces by mistake: a workbook (.xlsx is a ZIP archive, .xls an OLE
 * file), UTF-16 text, other binary data, a JSON array. Returns the text otherwise.
 * @throws UsageError `ERR_BATCH_INVALID`
 */
export function batchText(buf: Buffer, path: string): string {
  const fail = (what: string): never => {
    throw new UsageError(`batch file ${path} ${what}`, 'ERR_BATCH_INVALID');
  };
  if (buf.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))) fail(`is a ZIP archive (an .xlsx workbook?), not CSV: ${SAVE_AS_CSV}`);
  if (buf.subarray(0, 8).equals(Buffer.from('d0cf11e0a1b11ae1', 'hex'))) fail(`is an old Excel workbook (.xls), not CSV: ${SAVE_AS_CSV}`);
  const utf16 = (buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff)
    || (buf.length >= 4 && ((buf[1] === 0 && buf[3] === 0 && buf[0] !== 0) || (buf[0] === 0 && buf[2] === 0 && buf[1] !== 0)));
  if (utf16) fail(`is UTF-16 text ("Unicode Text" in a spreadsheet), not UTF-8: ${SAVE_AS_CSV}, or convert it: iconv -f UTF-16 -t UTF-8`);
  // A NUL inside a row is reported per row (an invalid device id); NULs everywhere mean a binary file.
  const nuls = buf.reduce((n, b) => n + (b === 0 ? 1 : 0), 0);
  if (nuls > 16) fail(`is binary data, not a text file (${nuls} NUL bytes, the first at offset ${buf.indexOf(0)})`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    return fail(`is not UTF-8 text (Latin-1 or another legacy encoding?): ${SAVE_AS_CSV}, or convert it: iconv -f LATIN1 -t UTF-8`);
  }
  if (text.trimStart().startsWith('[')) {
    fail(`is a JSON array; a JSON batch is JSON lines, one object per line ({"id":"pump-0001"}): convert it with jq -c '.[]' ${path} > batch.jsonl`);
  }
  return text;
}

/**
 * A CSV header that holds the whole header row in one column was split on another
 * delimiter: name it (a spreadsheet in a locale with a decimal comma saves semicolons).
 */
export function otherDelimiter(header: readonly string[]): string | undefined {
  if (header.length !== 1) return undefined;
  const [only] = header;
  if (only?.includes(';')) return 'semicolons';
  if (only?.includes('\t')) return 'tabs';
  return undefined;
}

/** A header cell as it can be shown on one line: control and non-ASCII characters escaped, at most 40 characters. */
export function printable(cell: string): string {
  const s = cell.length > 40 ? `${cell.slice(0, 40)}…` : cell;
  return s.replace(/[^\x20-\x7e…]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
