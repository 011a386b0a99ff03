/**
 * One raw node:crypto ES256 verify of a token: the yardstick the CONNECT figures
 * are set against. `rawInput` (split, decode) is kept apart so that the
 * micro-benchmarks can time the verify call alone.
 */
import { verify, type KeyObject } from 'node:crypto';

export interface RawInput { readonly signed: Buffer; readonly sig: Buffer }

export function rawInput(token: string): RawInput {
  const [h, p, s] = token.split('.');
  return { signed: Buffer.from(`${h}.${p}`, 'latin1'), sig: Buffer.from(s ?? '', 'base64url') };
}

export const rawVerify = (key: KeyObject, r: RawInput): boolean => verify('sha256', r.signed, { key, dsaEncoding: 'ieee-p1363' }, r.sig);
