import { readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { makeDirs } from '../util/make-dirs.js';
import { join } from 'node:path';
import { randomBytesPooled } from '../util/random.js';
import type { DeviceCredentials } from './credentials.js';

const FIELDS = ['deviceId', 'brokerUrl', 'accessToken', 'accessTokenExpiresAt', 'refreshCredential', 'refreshCredentialExpiresAt'] as const;

/** The file's text: exactly `JSON.stringify(creds, null, 2)` for these flat string fields, built without the generic pretty-printer (a batch writes thousands). */
const credentialsJson = (creds: DeviceCredentials) => `{\n${FIELDS.map((k) => `  "${k}": ${JSON.stringify(creds[k])}`).join(',\n')}\n}\n`;

/** `dir/<deviceId>.json` (a device id never contains `/`, so it cannot leave `dir`). */
export function credentialsFilePath(dir: string, deviceId: string): string {
  return join(dir, `${deviceId}.json`);
}

/**
 * Writes `dir/<deviceId>.json` atomically with mode 0600: a temp file in the same
 * folder, then rename, so a crash never leaves a half-written credentials file.
 */
export function writeCredentialsFile(dir: string, creds: DeviceCredentials): string {
  makeDirs(dir);
  const tmp = writePendingCredentialsFile(dir, creds);
  const path = credentialsFilePath(dir, creds.deviceId);
  renameSync(tmp, path);
  return path;
}

/**
 * First half of an atomic write: `dir/<deviceId>.json.<8 hex>.tmp`, mode 0600. Batch
 * provisioning renames it into place only after the registry has committed the
 * device, so a `<deviceId>.json` file always holds credentials the registry knows.
 * The folder must exist.
 */
export function writePendingCredentialsFile(dir: string, creds: DeviceCredentials): string {
  const tmp = `${credentialsFilePath(dir, creds.deviceId)}.${randomBytesPooled(4).toString('hex')}.tmp`;
  writeFileSync(tmp, credentialsJson(creds), { mode: 0o600, flag: 'wx' });
  return tmp;
}

const PENDING = /^(.+)\.json\.[0-9a-f]{8}\.tmp$/;

/** What a credentials folder holds: final files and pending (not yet renamed) ones, by device id. */
export interface CredentialsDirListing {
  readonly final: ReadonlySet<string>;
  readonly pending: ReadonlyMap<string, readonly string[]>;
}

export function listCredentialsDir(dir: string): CredentialsDirListing {
  const final = new Set<string>();
  const pending = new Map<string, string[]>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { final, pending };
    throw err;
  }
  for (const name of names) {
    const m = PENDING.exec(name);
    if (m) {
      const list = pending.get(m[1]!) ?? [];
      list.push(join(dir, name));
      pending.set(m[1]!, list);
    } else if (name.endsWith('.json')) {
      final.add(name.slice(0, -'.json'.length));
    }
  }
  return { final, pending };
}

/** Removes a leftover pending file (ignores one already gone). */
export function removePendingFile(path: string): void {
  rmSync(path, { force: true });
}

export function readCredentialsFile(path: string): DeviceCredentials {
  return JSON.parse(readFileSync(path, 'utf8')) as DeviceCredentials;
}

/** The `jti` of a credentials file's access token (payload decoded, signature not checked), or undefined. */
export function credentialsFileJti(path: string): string | undefined {
  try {
    const payload = readCredentialsFile(path).accessToken.split('.')[1];
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as { jti?: unknown };
    return typeof claims.jti === 'string' ? claims.jti : undefined;
  } catch {
    return undefined;
  }
}
