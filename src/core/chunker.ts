/**
 * Chunkers: content-defined (FastCDC-style gear hash with normalized chunking) for files, so an
 * insertion shifts only nearby cut points, and fixed-size for images, so a dirty block maps to a
 * known chunk. Pure functions over buffers; the callers stream data through them.
 */

export interface CdcParams {
  min: number;
  avg: number; // a power of two
  max: number;
}

/** Defaults chosen by measurement (docs/design.md, "Chunk sizes"). */
export const DEFAULT_CDC: CdcParams = { min: 64 * 1024, avg: 256 * 1024, max: 1024 * 1024 };
export const DEFAULT_IMAGE_CHUNK = 16 * 1024;
/** Manifests are chunked too, smaller, so unchanged stretches dedup between recovery points. */
export const MANIFEST_CDC: CdcParams = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };

/** Gear table from a fixed seed: every pool must cut identically, or dedup across pools is lost. */
const GEAR = (() => {
  const t = new Int32Array(256);
  let x = 0x9e3779b9 >>> 0;
  for (let i = 0; i < 256; i++) {
    // xorshift32
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    t[i] = x | 0;
  }
  return t;
})();

/**
 * The hash masks for an average chunk size: `small` (more bits, cuts rarer) before `avg` bytes,
 * `large` after. Exported for the native cutter (src/native), which takes them ready-made.
 */
export function cdcMasks(avg: number): { small: number; large: number } {
  const bits = Math.round(Math.log2(avg));
  // Top bits of the 32-bit gear hash depend on the last 32 bytes; low bits on too few.
  const top = (n: number): number => (n >= 32 ? -1 : ~((1 << (32 - n)) - 1)) | 0;
  return { small: top(bits + 2), large: top(bits - 2) };
}

/**
 * Length of the next chunk of buf[start, end). When fewer than `max` bytes remain and the input
 * is not final, returns 0: the caller must supply more data first.
 */
export function cdcNext(buf: Uint8Array, start: number, end: number, p: CdcParams, final: boolean): number {
  const avail = end - start;
  if (avail <= 0) return 0;
  if (avail < p.max && !final) return 0;
  if (avail <= p.min) return avail;
  const n = Math.min(avail, p.max);
  const normal = Math.min(p.avg, n);
  const { small, large } = cdcMasks(p.avg);
  let h = 0;
  let i = start + p.min;
  const normalEnd = start + normal;
  for (; i < normalEnd; i++) {
    h = ((h << 1) + (GEAR[buf[i] as number] as number)) | 0;
    if ((h & small) === 0) return i - start + 1;
  }
  const hardEnd = start + n;
  for (; i < hardEnd; i++) {
    h = ((h << 1) + (GEAR[buf[i] as number] as number)) | 0;
    if ((h & large) === 0) return i - start + 1;
  }
  return n;
}

/** All complete chunk lengths in buf; `rest` is the tail that awaits more data (0 when final). */
export function cdcSplit(buf: Uint8Array, p: CdcParams, final: boolean): { lengths: number[]; rest: number } {
  const lengths: number[] = [];
  let pos = 0;
  for (;;) {
    const len = cdcNext(buf, pos, buf.length, p, final);
    if (len === 0) break;
    lengths.push(len);
    pos += len;
  }
  return { lengths, rest: buf.length - pos };
}

export function fixedSplit(length: number, size: number): number[] {
  const out: number[] = [];
  for (let pos = 0; pos < length; pos += size) out.push(Math.min(size, length - pos));
  return out;
}

const ZERO = new Uint8Array(64 * 1024);

export function isAllZero(buf: Uint8Array): boolean {
  // Buffer.compare is a native memcmp; a JS byte loop is ten times slower.
  for (let pos = 0; pos < buf.length; pos += ZERO.length) {
    const n = Math.min(ZERO.length, buf.length - pos);
    if (Buffer.compare(buf.subarray(pos, pos + n), ZERO.subarray(0, n)) !== 0) return false;
  }
  return true;
}
