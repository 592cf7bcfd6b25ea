/**
 * Index files: where each chunk lives (pack, offset, lengths, flags). One file per write
 * session, written only after its packs are durable; a torn or damaged index is detected by its
 * checksum.
 *
 *   "HFIDX01\n" | entries (61 bytes: digest[32] pack[16] offset u32 storedLength u32 length u32 flags u8) | sha256(all before)[32]
 */
import { createHash } from 'node:crypto';
import type { PackEntry } from './pack-format.js';

export const INDEX_MAGIC = Buffer.from('HFIDX01\n');
export const INDEX_ENTRY_BYTES = 61;
const ENTRY = INDEX_ENTRY_BYTES;

export interface IndexEntry extends PackEntry {
  pack: string; // 32 hex chars
}

export function encodeIndex(entries: IndexEntry[]): Buffer {
  const buf = Buffer.alloc(INDEX_MAGIC.length + entries.length * ENTRY + 32);
  INDEX_MAGIC.copy(buf, 0);
  let o = INDEX_MAGIC.length;
  for (const e of entries) {
    buf.write(e.digest, o, 32, 'hex');
    buf.write(e.pack, o + 32, 16, 'hex');
    buf.writeUInt32LE(e.offset, o + 48);
    buf.writeUInt32LE(e.storedLength, o + 52);
    buf.writeUInt32LE(e.length, o + 56);
    buf.writeUInt8(e.flags, o + 60);
    o += ENTRY;
  }
  createHash('sha256').update(buf.subarray(0, o)).digest().copy(buf, o);
  return buf;
}

/** Checks an index file and returns its entry records (61 bytes each), or an error text. */
export function indexBody(buf: Buffer): Buffer | string {
  if (buf.length < INDEX_MAGIC.length + 32 || !buf.subarray(0, INDEX_MAGIC.length).equals(INDEX_MAGIC)) return 'not an index file';
  const body = buf.length - 32;
  if ((body - INDEX_MAGIC.length) % ENTRY !== 0) return 'index file has a partial entry';
  if (!createHash('sha256').update(buf.subarray(0, body)).digest().equals(buf.subarray(body))) return 'index checksum mismatch';
  return buf.subarray(INDEX_MAGIC.length, body);
}

export function decodeIndex(buf: Buffer): IndexEntry[] | string {
  if (buf.length < INDEX_MAGIC.length + 32 || !buf.subarray(0, INDEX_MAGIC.length).equals(INDEX_MAGIC)) return 'not an index file';
  const body = buf.length - 32;
  if ((body - INDEX_MAGIC.length) % ENTRY !== 0) return 'index file has a partial entry';
  if (!createHash('sha256').update(buf.subarray(0, body)).digest().equals(buf.subarray(body))) return 'index checksum mismatch';
  const out: IndexEntry[] = [];
  for (let o = INDEX_MAGIC.length; o < body; o += ENTRY) {
    out.push({
      digest: buf.toString('hex', o, o + 32),
      pack: buf.toString('hex', o + 32, o + 48),
      offset: buf.readUInt32LE(o + 48),
      storedLength: buf.readUInt32LE(o + 52),
      length: buf.readUInt32LE(o + 56),
      flags: buf.readUInt8(o + 60),
    });
  }
  return out;
}
