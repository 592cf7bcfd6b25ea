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

export function encodeTrailer(entries: PackEntry[]): Buffer {
  const t = Buffer.alloc(entries.length * TRAILER_ENTRY_BYTES);
  entries.forEach((e, i) => {
    const o = i * TRAILER_ENTRY_BYTES;
    t.write(e.digest, o, 32, 'hex');
    t.writeUInt32LE(e.offset, o + 32);
    t.writeUInt32LE(e.storedLength, o + 36);
    t.writeUInt32LE(e.length, o + 40);
    t.writeUInt8(e.flags, o + 44);
  });
  const tail = Buffer.alloc(TAIL_BYTES);
  tail.writeUInt32LE(entries.length, 0);
  tail.writeUInt32LE(t.length, 4);
  createHash('sha256').update(t).digest().copy(tail, 8);
  PACK_END.copy(tail, 40);
  return Buffer.concat([t, tail]);
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
