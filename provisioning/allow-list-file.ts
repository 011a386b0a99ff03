import { readFileSync } from 'node:fs';
import { UsageError } from '../errors/index.js';
import { isDeviceId, describe } from '../registry/index.js';

/**
 * Reads a claim's allow-list (`claim create --allow-list FILE`): one device id
 * per line, as a factory exports its serials. Blank lines, `#` comments and a
 * first line `id` (a one-column CSV header) are skipped. A bad id is refused
 * with its line number; nothing is created then.
 * @throws UsageError
 */
export function readAllowListFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read allow-list ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const ids: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const [k, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || (ids.length === 0 && line === 'id')) continue;
    if (!isDeviceId(line)) throw new UsageError(`allow-list ${path} line ${k + 1}: ${describe(line)} is not a device id (1-128 characters of A-Z a-z 0-9 . _ : -, not starting with claim: or grant:)`);
    ids.push(line);
  }
  if (ids.length === 0) throw new UsageError(`allow-list ${path} holds no device ids (one id per line)`);
  return ids;
}
