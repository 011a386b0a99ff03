import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DeviceCredentials } from './credentials.js';

/**
 * Writes `dir/<deviceId>.json` atomically with mode 0600: a temp file in the same
 * folder, then rename, so a crash never leaves a half-written credentials file.
 */
export function writeCredentialsFile(dir: string, creds: DeviceCredentials): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${creds.deviceId}.json`);
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
  return path;
}

export function readCredentialsFile(path: string): DeviceCredentials {
  return JSON.parse(readFileSync(path, 'utf8')) as DeviceCredentials;
}
