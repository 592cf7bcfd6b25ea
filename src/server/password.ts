/**
 * Password hashing for console and portal accounts: scrypt (node:crypto) with a random salt, in
 * a self-describing text form so the cost can be raised later without breaking old hashes.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const N = 1 << 15;
const R = 8;
const P = 1;
const KEYLEN = 32;
// N=2^15, r=8 needs 32 MiB; the default maxmem (32 MiB) is just too small.
const MAXMEM = 64 * 1024 * 1024;

function derive(password: string, salt: Buffer, o: ScryptOptions & { keylen: number }): Promise<Buffer> {
  return new Promise((res, rej) => scrypt(password.normalize('NFC'), salt, o.keylen, { N: o.N, r: o.r, p: o.p, maxmem: MAXMEM }, (err, key) => (err ? rej(err) : res(key))));
}

/** `scrypt$N$r$p$salt$key` (base64url). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, { N, r: R, p: P, keylen: KEYLEN });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4] as string, 'base64url');
  const want = Buffer.from(parts[5] as string, 'base64url');
  if (!(n > 1 && n <= 1 << 20 && r >= 1 && r <= 32 && p >= 1 && p <= 16 && want.length >= 16)) return false;
  const got = await derive(password, salt, { N: n, r, p, keylen: want.length });
  return timingSafeEqual(got, want);
}

/** A password to hand out when the administrator gives none. */
export function randomPassword(): string {
  return randomBytes(15).toString('base64url');
}
