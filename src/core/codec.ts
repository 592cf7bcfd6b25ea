/**
 * Chunk encoding: SHA-256 of the plaintext names a chunk; zstd compresses it unless that does
 * not pay, in which case it is stored raw. Decoding always re-hashes, so damage is never
 * returned as data.
 */
import { createRequire } from 'node:module';
import * as crypto from 'node:crypto';
import { cdcSplit, fixedSplit, isAllZero, type CdcParams } from './chunker.js';

const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');

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

/** One-shot hashing (Node >= 20.12) skips a Hash object per chunk: about a fifth faster at 16 KiB. */
const sha256Hex: (d: Uint8Array) => string =
  typeof crypto.hash === 'function' ? (d) => crypto.hash('sha256', d, 'hex') : (d) => crypto.createHash('sha256').update(d).digest('hex');

/**
 * Cuts and hashes one buffer. `cut` is the content-defined splitter: the codec workers pass the
 * native one (src/workers/cdc.ts), which must cut exactly like this module's default.
 */
export function splitAndHash(buf: Uint8Array, rule: SplitRule, detectZero: boolean, cut: typeof cdcSplit = cdcSplit): HashedPiece {
  let lengths: number[];
  let used = buf.length;
  if (rule.kind === 'whole') lengths = buf.length > 0 ? [buf.length] : [];
  else if (rule.kind === 'fixed') lengths = fixedSplit(buf.length, rule.size);
  else {
    const r = cut(buf, rule.params, rule.final);
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
    // Zero chunks become holes and are never stored: no digest needed.
    digests.push(z ? '' : sha256Hex(piece));
    pos += len;
  }
  return { lengths, digests, zero, used };
}

export interface EncodedChunk {
  data: Uint8Array;
  flags: number;
}

/** Where one encoded or decoded chunk sits in a job's output buffer. */
export interface Placed {
  offset: number;
  length: number;
  flags: number;
}

let cctx: InstanceType<typeof zstd.CCtx> | undefined;
let cctxLevel = -1;

/** One compression context per thread, its level set once (compress2 keeps it between calls). */
function compressor(level: number): InstanceType<typeof zstd.CCtx> {
  cctx ??= new zstd.CCtx();
  if (cctxLevel !== level) {
    cctx.setParameter(zstd.CParameter.compressionLevel, level);
    cctxLevel = level;
  }
  return cctx;
}
let dctx: InstanceType<typeof zstd.DCtx> | undefined;
let scratch = Buffer.alloc(0);
const DIRECT_OUT = 1024 * 1024;

function scratchOf(size: number): Buffer {
  if (scratch.length < size) scratch = Buffer.allocUnsafeSlow(Math.max(size, scratch.length * 2));
  return scratch;
}

const SAMPLES = 512;
const counts = new Uint16Array(256);
/** c * log2(c) for every count a sample can reach: no logarithm per byte value per chunk. */
const C_LOG_C = Float64Array.from({ length: SAMPLES + 1 }, (_, c) => (c > 0 ? c * Math.log2(c) : 0));
const LOG_SAMPLES = Math.log2(SAMPLES);

/**
 * A cheap look before the expensive try: the byte entropy of 512 bytes sampled across the chunk.
 * Random or already-compressed data estimates near 7.6 bits per byte; text, code and zero-padded
 * data far lower. Above 7.3 zstd would not save the 3% that storing compressed needs, so the
 * chunk is stored raw without trying (about a third of a typical disk image).
 */
export function looksIncompressible(p: Uint8Array): boolean {
  if (p.length < 4096) return false;
  counts.fill(0);
  const step = Math.floor(p.length / SAMPLES);
  for (let i = 0; i < SAMPLES; i++) counts[p[i * step] as number]! += 1;
  // H = -sum (c/N) log2(c/N) = log2 N - (1/N) sum c log2 c
  let s = 0;
  for (let b = 0; b < 256; b++) s += C_LOG_C[counts[b] as number] as number;
  return LOG_SAMPLES - s / SAMPLES > 7.3;
}

/**
 * Encodes many chunks into one output buffer (one allocation, one transfer between threads):
 * compressed where zstd saves enough, raw otherwise. A large batch is encoded straight into
 * `into` when it is big enough (a buffer handed back after an earlier batch: memory touched
 * before costs far less than fresh), else into a new buffer of its own; a small one goes
 * through the scratch buffer and leaves with a right-sized copy. `usedInto` says which.
 */
export function encodeMany(pieces: Uint8Array[], level: number, into?: Buffer): { out: Buffer; placed: Placed[]; usedInto: boolean } {
  let bound = 0;
  for (const p of pieces) bound += Math.max(zstd.compressBound(p.length), p.length);
  const direct = bound >= DIRECT_OUT;
  const usedInto = direct && into !== undefined && into.length >= bound;
  // A new one is rounded up to whole MiB, so that it can take the next batches too when it comes back.
  const work = usedInto ? into : direct ? Buffer.allocUnsafeSlow(Math.ceil(bound / DIRECT_OUT) * DIRECT_OUT) : scratchOf(bound);
  const placed: Placed[] = [];
  let at = 0;
  for (const p of pieces) {
    let flags = 0;
    let len = p.length;
    if (level > 0 && p.length >= 64 && !looksIncompressible(p)) {
      const n = compressor(level).compress2(work.subarray(at, at + zstd.compressBound(p.length)), p);
      if (n <= p.length * (1 - MIN_SAVING)) {
        flags = FLAG_ZSTD;
        len = n;
      }
    }
    if (flags === 0) work.set(p, at);
    placed.push({ offset: at, length: len, flags });
    at += len;
  }
  return { out: direct ? work : Buffer.from(work.subarray(0, at)), placed, usedInto };
}

export function encodeChunk(plain: Uint8Array, level: number): EncodedChunk {
  const { out, placed } = encodeMany([plain], level);
  const p = placed[0] as Placed;
  return { data: out.subarray(p.offset, p.offset + p.length), flags: p.flags };
}

export type DecodeResult = { ok: true; data: Uint8Array } | { ok: false; reason: string };
export type PlacedDecode = { ok: true; offset: number; length: number } | { ok: false; reason: string };

export interface StoredChunk {
  data: Uint8Array;
  flags: number;
  length: number;
  digest: string;
}

/**
 * Decodes one stored chunk into `dst` and checks its length and digest; the reason it is damaged,
 * or undefined. A raw chunk is copied into `dst` only when `copyRaw` (else hashed where it lies).
 */
function decodeOne(it: StoredChunk, dst: Buffer, copyRaw: boolean): string | undefined {
  let plain: Uint8Array = it.data;
  if (it.flags & FLAG_ZSTD) {
    let n: number;
    try {
      dctx ??= new zstd.DCtx();
      n = dctx.decompress(dst, it.data);
    } catch (err) {
      return `cannot decompress: ${(err as Error).message}`;
    }
    if (n !== it.length) return `length ${n}, expected ${it.length}`;
    plain = dst;
  } else {
    if (it.data.length !== it.length) return `length ${it.data.length}, expected ${it.length}`;
    if (copyRaw) {
      dst.set(it.data);
      plain = dst;
    }
  }
  const actual = sha256Hex(plain);
  return actual === it.digest ? undefined : `digest mismatch (content hashes to ${actual.slice(0, 16)}…)`;
}

/** Plaintext verifyMany hands back per call at most (more than a job keeps, server/kept-manifest.ts). */
export const MAX_KEPT = 16 * 1024 * 1024;

/** A chunk to verify; `keep`: hand its plaintext back (a manifest chunk the server checks at commit). */
export interface VerifyItem extends StoredChunk {
  keep?: boolean;
}

/** Verified, and for a kept item where its plaintext lies in `kept` ([offset, length]). */
export type VerifyResult = { ok: true; at?: [number, number] } | { ok: false; reason: string };

/**
 * Checks stored chunks as decodeMany does (decompressed, re-hashed, lengths), keeping no plaintext
 * but that of the items marked `keep` (one buffer for all of them, up to MAX_KEPT bytes; those
 * past it are verified and not kept): what the server needs of an
 * upload before it goes into a pack. Raw chunks are hashed where they lie; compressed ones are
 * decompressed into `scratch`.
 */
export function verifyMany(items: VerifyItem[], scratch: (size: number) => Buffer): { results: VerifyResult[]; kept?: Buffer } {
  // Kept in order up to MAX_KEPT: the lengths are the sender's word, and a body of small frames
  // that inflate must not make the worker allocate what they claim.
  let keptBytes = 0;
  const keep = items.map((it) => {
    if (!it.keep || keptBytes + it.length > MAX_KEPT) return false;
    keptBytes += it.length;
    return true;
  });
  const kept = keptBytes > 0 ? Buffer.allocUnsafeSlow(keptBytes) : undefined;
  let at = 0;
  const results = items.map((it, i): VerifyResult => {
    const into = keep[i] && kept ? kept.subarray(at, at + it.length) : scratch(it.length).subarray(0, it.length);
    const reason = decodeOne(it, into, keep[i] === true);
    if (reason !== undefined) return { ok: false, reason };
    if (!keep[i]) return { ok: true };
    const r: VerifyResult = { ok: true, at: [at, it.length] };
    at += it.length;
    return r;
  });
  return kept ? { results, kept } : { results };
}

/**
 * Decodes many chunks into one output buffer, re-hashing each; damage is a result, not data.
 * `into` lends a buffer to decode into (reused by a caller that writes the data out at once).
 */
export function decodeMany(items: StoredChunk[], into?: (size: number) => Buffer): { out: Buffer; placed: PlacedDecode[] } {
  let total = 0;
  for (const it of items) total += it.length;
  const out = into ? into(total) : Buffer.allocUnsafeSlow(total);
  const placed: PlacedDecode[] = [];
  let at = 0;
  for (const it of items) {
    const reason = decodeOne(it, out.subarray(at, at + it.length), true);
    if (reason !== undefined) {
      placed.push({ ok: false, reason });
      continue;
    }
    placed.push({ ok: true, offset: at, length: it.length });
    at += it.length;
  }
  return { out, placed };
}

export function decodeChunk(stored: Uint8Array, flags: number, length: number, digest: string): DecodeResult {
  const { out, placed } = decodeMany([{ data: stored, flags, length, digest }]);
  const p = placed[0] as PlacedDecode;
  return p.ok ? { ok: true, data: out.subarray(p.offset, p.offset + p.length) } : p;
}
