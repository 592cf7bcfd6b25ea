/**
 * Chunk encoding: SHA-256 of the plaintext names a chunk; zstd compresses it unless that does
 * not pay, in which case it is stored raw. Decoding always re-hashes, so damage is never
 * returned as data.
 */
import { compress, decompress } from 'zstd-napi';
import { createHash } from 'node:crypto';
import { cdcSplit, fixedSplit, isAllZero, type CdcParams } from './chunker.js';

export const FLAG_ZSTD = 1;
/** Store raw when compression saves less than this share. */
const MIN_SAVING = 0.03;

export type SplitRule = { kind: 'whole' } | { kind: 'fixed'; size: number } | { kind: 'cdc'; params: CdcParams; final: boolean };

export interface HashedPiece {
  /** chunk lengths in order; they sum to `used` */
  lengths: number[];
  digests: string[];
  /** per chunk: all zero bytes (only computed when asked) */
  zero: boolean[];
  /** bytes consumed; the rest awaits more data (CDC, not final) */
  used: number;
}

export function splitAndHash(buf: Uint8Array, rule: SplitRule, detectZero: boolean): HashedPiece {
  let lengths: number[];
  let used = buf.length;
  if (rule.kind === 'whole') lengths = buf.length > 0 ? [buf.length] : [];
  else if (rule.kind === 'fixed') lengths = fixedSplit(buf.length, rule.size);
  else {
    const r = cdcSplit(buf, rule.params, rule.final);
    lengths = r.lengths;
    used = buf.length - r.rest;
  }
  const digests: string[] = [];
  const zero: boolean[] = [];
  let pos = 0;
  for (const len of lengths) {
    const piece = buf.subarray(pos, pos + len);
    const z = detectZero && isAllZero(piece);
    zero.push(z);
    digests.push(createHash('sha256').update(piece).digest('hex'));
    pos += len;
  }
  return { lengths, digests, zero, used };
}

export interface EncodedChunk {
  data: Uint8Array;
  flags: number;
}

export function encodeChunk(plain: Uint8Array, level: number): EncodedChunk {
  if (level > 0 && plain.length >= 64) {
    const z = compress(plain, { compressionLevel: level });
    if (z.length <= plain.length * (1 - MIN_SAVING)) return { data: z, flags: FLAG_ZSTD };
  }
  return { data: plain, flags: 0 };
}

export type DecodeResult = { ok: true; data: Uint8Array } | { ok: false; reason: string };

export function decodeChunk(stored: Uint8Array, flags: number, length: number, digest: string): DecodeResult {
  let plain: Uint8Array;
  try {
    plain = flags & FLAG_ZSTD ? decompress(stored) : stored;
  } catch (err) {
    return { ok: false, reason: `cannot decompress: ${(err as Error).message}` };
  }
  if (plain.length !== length) return { ok: false, reason: `length ${plain.length}, expected ${length}` };
  const actual = createHash('sha256').update(plain).digest('hex');
  if (actual !== digest) return { ok: false, reason: `digest mismatch (content hashes to ${actual.slice(0, 16)}…)` };
  return { ok: true, data: plain };
}
