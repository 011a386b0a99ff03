const ALPHABET = /^[A-Za-z0-9_-]+$/;
/** Each base64url character's 6-bit value, by char code. */
const VALUE = new Uint8Array(128);
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].entries()) VALUE[c.charCodeAt(0)] = i;

/**
 * True when `s` is unpadded base64url in its one canonical spelling (RFC 4648
 * §3.5): a length that some byte string encodes to, and the unused low bits of
 * the last character zero. A lenient decoder maps `…w` and `…x` to the same
 * bytes; refusing the second gives every token exactly one spelling, which any
 * cache or list keyed by a token's text relies on. No allocation: this runs on
 * every CONNECT.
 */
export function isCanonicalBase64url(s: string): boolean {
  if (!ALPHABET.test(s)) return false;
  const rem = s.length & 3;
  if (rem === 0) return true;
  if (rem === 1) return false;
  // 2 chars carry 1 byte (4 spare bits), 3 chars carry 2 bytes (2 spare bits).
  return (VALUE[s.charCodeAt(s.length - 1)]! & (rem === 2 ? 0x0f : 0x03)) === 0;
}
