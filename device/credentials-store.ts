import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import type { DeviceCredentials } from '../provisioning/credentials.js';
import { DeviceError } from './errors.js';

export type { DeviceCredentials };

const FIELDS = ['deviceId', 'brokerUrl', 'accessToken', 'accessTokenExpiresAt', 'refreshCredential', 'refreshCredentialExpiresAt'] as const;

/**
 * Checks that an object has every field of a credentials file as a non-empty
 * string. The error names the missing field, never a value (values are secrets).
 */
export function checkCredentials(value: unknown, where = 'credentials'): DeviceCredentials {
  if (value === null || typeof value !== 'object') throw new DeviceError('ERR_BAD_CREDENTIALS', `${where}: expected a JSON object`);
  const obj = value as Record<string, unknown>;
  for (const f of FIELDS) {
    if (typeof obj[f] !== 'string' || (obj[f] as string).length === 0) throw new DeviceError('ERR_BAD_CREDENTIALS', `${where}: field "${f}" is missing or not a string`);
  }
  return obj as unknown as DeviceCredentials;
}

/** Reads and checks a credentials file (the format `credbroker provision` writes). */
export function loadCredentials(path: string): DeviceCredentials {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DeviceError('ERR_BAD_CREDENTIALS', `cannot read credentials file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    throw new DeviceError('ERR_BAD_CREDENTIALS', `credentials file ${path} is not JSON`);
  }
  return checkCredentials(obj, `credentials file ${path}`);
}

/**
 * Replaces the credentials file atomically, mode 0600.
 *
 * Why this order matters: a renewal may hand out a new refresh credential, and
 * the device must never end up knowing only a credential the broker has
 * forgotten. So: write a temp file next to the target (same filesystem, so the
 * rename is atomic), fsync it, rename it over the old file, fsync the folder.
 * A power cut at any instant leaves either the old file or the new one, never
 * a torn one. Only after this returns does the client use the new credentials.
 */
export function saveCredentials(path: string, creds: DeviceCredentials): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const body = `${JSON.stringify(creds, null, 2)}\n`;
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'wx', 0o600);
    writeSync(fd, body);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new DeviceError('ERR_PERSIST', `cannot save credentials to ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    const dfd = openSync(dirname(path), 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is done.
  }
}
