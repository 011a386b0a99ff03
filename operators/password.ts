import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Operator passwords, stored as scrypt hashes. scrypt because it is memory-hard
 * (a GPU or ASIC farm pays in memory for every guess, which bcrypt and PBKDF2 do
 * not make it do) and it is in Node's own crypto: no native module to build,
 * which argon2 would need. The async form runs on libuv's thread pool, so a
 * login never blocks the broker's event loop.
 *
 * Stored form: `scrypt$N$r$p$SALT$HASH` (base64url): each row carries its own
 * salt and cost, so the cost can rise later and old rows still verify.
 * Cost: N=2^15, r=8, p=3 (OWASP's scrypt row for 32 MiB of memory per hash).
 */
const COST = { N: 2 ** 15, r: 8, p: 3 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** The longest password hashed: a longer one is refused before any work (a hash of a huge input costs only its length, but why pay it). */
export const MAX_PASSWORD_LENGTH = 1024;

function derive(password: string, salt: Buffer, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; Node's default ceiling (32 MiB) is exactly that, so leave room.
  const opts: ScryptOptions = { ...cost, maxmem: 256 * cost.N * cost.r };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, KEY_BYTES, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, COST);
  return ['scrypt', COST.N, COST.r, COST.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** False for a wrong password, and for a stored value this code cannot read (never throws on it). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (password.length > MAX_PASSWORD_LENGTH) return false;
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const cost = { N: Number(n), r: Number(r), p: Number(p) };
  if (![cost.N, cost.r, cost.p].every((v) => Number.isSafeInteger(v) && v > 0)) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await derive(password, Buffer.from(salt, 'base64url'), cost);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/**
 * A stored hash that matches no password: verifying against it when the name is
 * unknown makes "no such operator" cost as much as "wrong password", so the
 * answer time does not tell which names exist.
 */
export const UNUSABLE_HASH = `scrypt$${COST.N}$${COST.r}$${COST.p}$${Buffer.alloc(SALT_BYTES).toString('base64url')}$${Buffer.alloc(1).toString('base64url')}`;

/** A new random password: 192 bits, 32 characters of base64url (nothing a shell or a URL mangles). */
export const newPassword = (): string => randomBytes(24).toString('base64url');
