// Hand-made JWS compact tokens for the hostile-token corpus: any header, any
// payload (even non-JSON), signed with any key, or not signed at all.
import { createHash, createHmac, randomBytes, sign, type KeyObject } from 'node:crypto';

export const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');

/** `header.payload` from raw JSON text (or any text) — no normalisation. */
export const signingInput = (header: string | object, payload: string | object) =>
  `${b64(typeof header === 'string' ? header : JSON.stringify(header))}.${b64(typeof payload === 'string' ? payload : JSON.stringify(payload))}`;

/** ES256 (IEEE P1363 r||s) or EdDSA signature over the input. */
export function signWith(key: KeyObject, header: string | object, payload: string | object, alg: 'ES256' | 'EdDSA' = 'ES256'): string {
  const input = signingInput(header, payload);
  const data = Buffer.from(input, 'latin1');
  const sig = alg === 'ES256' ? sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }) : sign(null, data, key);
  return `${input}.${sig.toString('base64url')}`;
}

/** Signs `input` (any text, however spelled) as it stands: `input.signature`. */
export function signInput(key: KeyObject, input: string): string {
  return `${input}.${sign('sha256', Buffer.from(input, 'latin1'), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The same bytes spelled another way: the lowest unused bit of the last base64url
 * character set (RFC 4648 §3.5), e.g. `…w` → `…x`. A lenient decoder cannot tell them apart.
 */
export function respell(segment: string): string {
  if (segment.length % 4 < 2) throw new Error(`a segment of ${segment.length} chars has no spare bits`);
  return segment.slice(0, -1) + B64URL[B64URL.indexOf(segment.at(-1)!) | 1];
}

/** ES256 signature in DER form instead of the JOSE r||s form. */
export function signDer(key: KeyObject, header: object, payload: object): string {
  const input = signingInput(header, payload);
  return `${input}.${sign('sha256', Buffer.from(input, 'latin1'), { key, dsaEncoding: 'der' }).toString('base64url')}`;
}

/** HMAC "signature" with an attacker-chosen secret (algorithm confusion). */
export function signHmac(secret: string | Buffer, header: object, payload: object, hash: 'sha256' | 'sha384' | 'sha512' = 'sha256'): string {
  const input = signingInput(header, payload);
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

/** A refresh credential with the right shape; `goodChecksum` false breaks only its checksum. */
export function fakeRefresh(goodChecksum: boolean): string {
  const body = randomBytes(32).toString('base64url');
  const sum = createHash('sha256').update(`cbrt_${body}`).digest().subarray(0, 4).toString('base64url');
  const bad = sum[0] === 'A' ? `B${sum.slice(1)}` : `A${sum.slice(1)}`;
  return `cbrt_${body}${goodChecksum ? sum : bad}`;
}

/** Flips one character of a credential's checksum (a typo). */
export function breakChecksum(cred: string): string {
  const last = cred.at(-1)!;
  return cred.slice(0, -1) + (last === 'A' ? 'B' : 'A');
}

/**
 * A CONNECT packet built by hand, so that the password length field can lie:
 * MQTT 3.1.1 can only carry 65535 password bytes; a hostile client sends more.
 */
export function handmadeConnect(clientId: string, username: string | null, password: Buffer, passwordLengthField = password.length): Buffer {
  const u16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16BE(n & 0xffff); return b; };
  const str = (s: string) => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)]);
  const body = Buffer.concat([
    str('MQTT'), Buffer.from([4, username === null ? 0x42 : 0xc2]), u16(30),
    str(clientId), ...(username === null ? [] : [str(username)]), u16(passwordLengthField), password,
  ]);
  const len: number[] = [];
  let n = body.length;
  do { let b = n % 128; n = Math.floor(n / 128); if (n > 0) b |= 0x80; len.push(b); } while (n > 0);
  return Buffer.concat([Buffer.from([0x10, ...len]), body]);
}
