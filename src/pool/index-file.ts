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

/**
 * Index records built as chunks are added to a pack: digest, offset, lengths and flags written
 * once, in place, the pack id filled in when it is known. The pack's trailer and index file are
 * then copies of these bytes, and the in-memory index takes them as they are (no object or hex
 * string per chunk).
 */
export class IndexRecords {
  private buf: Buffer;
  count = 0;

  constructor(room = 1024) {
    this.buf = Buffer.allocUnsafe(room * ENTRY);
  }

  push(digest: string, offset: number, storedLength: number, length: number, flags: number): void {
    if ((this.count + 1) * ENTRY > this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.count * ENTRY);
      this.buf = bigger;
    }
    const o = this.count * ENTRY;
    if (this.buf.write(digest, o, 32, 'hex') !== 32) throw new Error(`not a digest: ${digest}`);
    this.buf.fill(0, o + 32, o + 48);
    this.buf.writeUInt32LE(offset, o + 48);
    this.buf.writeUInt32LE(storedLength, o + 52);
    this.buf.writeUInt32LE(length, o + 56);
    this.buf.writeUInt8(flags, o + 60);
    this.count++;
  }

  /** Every record's pack id (32 hex chars). */
  setPack(pack: string): void {
    const id = Buffer.from(pack, 'hex');
    for (let o = 32; o < this.count * ENTRY; o += ENTRY) id.copy(this.buf, o);
  }

  /** The records (an index file's body), a view of this object's memory. */
  body(): Buffer {
    return this.buf.subarray(0, this.count * ENTRY);
  }

  static of(entries: Array<Omit<IndexEntry, 'pack'> & { pack?: string }>): IndexRecords {
    const r = new IndexRecords(Math.max(1, entries.length));
    for (const e of entries) {
      r.push(e.digest, e.offset, e.storedLength, e.length, e.flags);
      if (e.pack !== undefined) Buffer.from(e.pack, 'hex').copy(r.buf, (r.count - 1) * ENTRY + 32);
    }
    return r;
  }
}

/** An index file: magic, the records, their checksum. */
export function indexFileOf(body: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(INDEX_MAGIC.length + body.length + 32);
  INDEX_MAGIC.copy(buf, 0);
  body.copy(buf, INDEX_MAGIC.length);
  const o = INDEX_MAGIC.length + body.length;
  createHash('sha256').update(buf.subarray(0, o)).digest().copy(buf, o);
  return buf;
}

export function encodeIndex(entries: IndexEntry[]): Buffer {
  return indexFileOf(IndexRecords.of(entries).body());
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
