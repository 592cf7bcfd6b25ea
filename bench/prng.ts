/**
 * Seeded pseudo-random numbers for the benchmark data set: xorshift128 seeded through
 * splitmix32, so the same (seed, stream) pair yields the same bytes on every run and
 * every machine. Not for cryptography.
 */
import { endianness } from 'node:os';

const GOLDEN = 0x9e3779b9;

function mix32(value: number): number {
  let t = value ^ (value >>> 16);
  t = Math.imul(t, 0x21f0aaad);
  t ^= t >>> 15;
  t = Math.imul(t, 0x735a2d97);
  t ^= t >>> 15;
  return t >>> 0;
}

// Bulk fills view the buffer as 32-bit words; the byte order must not vary between hosts.
if (endianness() !== 'LE') throw new Error('bench data generation assumes a little-endian host');

/** A deterministic generator; `stream` gives independent sequences from one seed. */
export class Prng {
  private x: number;
  private y: number;
  private z: number;
  private w: number;

  constructor(seed: number, stream = 0) {
    let s = (seed ^ mix32(stream + GOLDEN)) | 0;
    const next = (): number => {
      s = (s + GOLDEN) | 0;
      return mix32(s);
    };
    this.x = next();
    this.y = next();
    this.z = next();
    this.w = next() | 1; // never the all-zero state
  }

  /** The next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const t = this.x ^ (this.x << 11);
    this.x = this.y;
    this.y = this.z;
    this.z = this.w;
    this.w = (this.w ^ (this.w >>> 19) ^ t ^ (t >>> 8)) >>> 0;
    return this.w;
  }

  /** A uniform integer in [0, n), for n up to 2^53. */
  below(n: number): number {
    const r = this.nextU32() * 0x200000 + (this.nextU32() >>> 11); // 53 bits
    return Math.floor((r / 2 ** 53) * n);
  }

  /** A uniform integer in [lo, hi], both inclusive. */
  between(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  /** Fills `bytes` with random bytes; word-aligned views take the fast path. */
  fill(bytes: Uint8Array): void {
    let i = 0;
    if (bytes.byteOffset % 4 === 0) {
      // Int32 arithmetic keeps the loop in small integers (no heap numbers).
      const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
      let x = this.x | 0;
      let y = this.y | 0;
      let z = this.z | 0;
      let w = this.w | 0;
      for (let k = 0; k < words.length; k++) {
        const t = x ^ (x << 11);
        x = y;
        y = z;
        z = w;
        w = w ^ (w >>> 19) ^ t ^ (t >>> 8);
        words[k] = w;
      }
      this.x = x >>> 0;
      this.y = y >>> 0;
      this.z = z >>> 0;
      this.w = w >>> 0;
      i = words.length * 4;
    }
    for (; i < bytes.length; i += 4) {
      const v = this.nextU32();
      for (let b = 0; b < 4 && i + b < bytes.length; b++) bytes[i + b] = (v >>> (8 * b)) & 0xff;
    }
  }
}
