/**
 * Pack files: many encoded chunks in one file, never modified after they are written.
 *
 *   "HFPACK1\n" | chunk bytes ... | trailer entries | tail
 *   trailer entry (45 bytes): digest[32] offset u32 storedLength u32 length u32 flags u8
 *   tail (48 bytes): count u32 | trailerBytes u32 | sha256(trailer)[32] | "HFPKEND1"
 *
 * The trailer makes a pack self-describing, so indexes can be rebuilt and verified from packs.
 */
import { createHash } from 'node:crypto';
import { INDEX_ENTRY_BYTES, IndexRecords } from './index-file.js';

export const PACK_MAGIC = Buffer.from('HFPACK1\n');
export const PACK_END = Buffer.from('HFPKEND1');
export const TRAILER_ENTRY_BYTES = 45;
export const TAIL_BYTES = 48;

export interface PackEntry {
  digest: string;
  offset: number;
  storedLength: number;
  length: number;
  flags: number;
}

/** A pack's trailer and tail from its index records (pool/index-file.ts): the same fields, less the pack id. */
export function trailerOf(records: Buffer): Buffer {
  const count = records.length / INDEX_ENTRY_BYTES;
  const out = Buffer.allocUnsafe(count * TRAILER_ENTRY_BYTES + TAIL_BYTES);
  for (let i = 0; i < count; i++) {
    const r = i * INDEX_ENTRY_BYTES;
    const o = i * TRAILER_ENTRY_BYTES;
    records.copy(out, o, r, r + 32); // digest
    records.copy(out, o + 32, r + 48, r + 61); // offset, storedLength, length, flags
  }
  const t = count * TRAILER_ENTRY_BYTES;
  out.writeUInt32LE(count, t);
  out.writeUInt32LE(t, t + 4);
  createHash('sha256').update(out.subarray(0, t)).digest().copy(out, t + 8);
  PACK_END.copy(out, t + 40);
  return out;
}

export function encodeTrailer(entries: PackEntry[]): Buffer {
  return trailerOf(IndexRecords.of(entries).body());
}

/** Parses the tail; returns the trailer's size and count, or an error text. */
export function parseTail(tail: Buffer): { count: number; trailerBytes: number; hash: Buffer } | string {
  if (tail.length !== TAIL_BYTES || !tail.subarray(40).equals(PACK_END)) return 'pack tail missing (torn or not a pack)';
  const count = tail.readUInt32LE(0);
  const trailerBytes = tail.readUInt32LE(4);
  if (trailerBytes !== count * TRAILER_ENTRY_BYTES) return 'pack tail inconsistent';
  return { count, trailerBytes, hash: tail.subarray(8, 40) };
}

export function parseTrailer(trailer: Buffer, hash: Buffer): PackEntry[] | string {
  if (!createHash('sha256').update(trailer).digest().equals(hash)) return 'pack trailer checksum mismatch';
  const out: PackEntry[] = [];
  for (let o = 0; o < trailer.length; o += TRAILER_ENTRY_BYTES) {
    out.push({
      digest: trailer.toString('hex', o, o + 32),
      offset: trailer.readUInt32LE(o + 32),
      storedLength: trailer.readUInt32LE(o + 36),
      length: trailer.readUInt32LE(o + 40),
      flags: trailer.readUInt8(o + 44),
    });
  }
  return out;
}
