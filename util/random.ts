import { randomBytes } from 'node:crypto';

const POOL_BYTES = 8192;
let pool = Buffer.alloc(0);
let offset = 0;

/**
 * Cryptographically random bytes, drawn from a pool refilled by `crypto.randomBytes`.
 * Same quality as calling `randomBytes` each time (consecutive slices of the
 * CSPRNG's output), but one syscall per 8 KiB instead of one per value: minting
 * a factory batch needs three random values per device. Each byte is handed out
 * once and the pool slice is zeroed after copying.
 */
export function randomBytesPooled(n: number): Buffer {
  if (n > 512) return randomBytes(n);
  if (offset + n > pool.length) {
    pool = randomBytes(POOL_BYTES);
    offset = 0;
  }
  const out = Buffer.allocUnsafe(n);
  pool.copy(out, 0, offset, offset + n);
  pool.fill(0, offset, offset + n);
  offset += n;
  return out;
}
