/**
 * The in-memory map from digest to location, loaded from all index files when a pool opens.
 * Entries live in one growing byte array in index-file layout (61 bytes each) with an
 * open-addressing table of entry numbers beside it: no object per chunk, so loading is a copy
 * and a million chunks cost about 70 MB, not several hundred.
 */
import type { IndexEntry } from './index-file.js';

export interface ChunkLocation {
  pack: string;
  offset: number;
  storedLength: number;
  length: number;
  flags: number;
}

const ENTRY = 61; // digest[32] pack[16] offset u32 storedLength u32 length u32 flags u8
const EMPTY = -1;

export class ChunkIndex {
  private records = Buffer.alloc(ENTRY * 1024);
  private count = 0;
  private slots = new Int32Array(2048).fill(EMPTY);
  /** scratch key for lengthOf() */
  private readonly key = Buffer.alloc(32);

  get size(): number {
    return this.count;
  }

  /** Takes over another index's entries (a reloaded view), so holders of this object see them. */
  replaceWith(other: ChunkIndex): void {
    this.records = other.records;
    this.count = other.count;
    this.slots = other.slots;
  }

  add(e: IndexEntry): void {
    const key = Buffer.from(e.digest, 'hex');
    if (this.find(key) !== EMPTY) return; // first location wins; duplicates are garbage for gc
    this.ensureRoom();
    const at = this.count * ENTRY;
    key.copy(this.records, at);
    this.records.write(e.pack, at + 32, 16, 'hex');
    this.records.writeUInt32LE(e.offset, at + 48);
    this.records.writeUInt32LE(e.storedLength, at + 52);
    this.records.writeUInt32LE(e.length, at + 56);
    this.records.writeUInt8(e.flags, at + 60);
    this.insert(this.count);
    this.count++;
  }

  /**
   * Adds the entries of an index file body (after its magic, without its checksum), except those
   * `skip` refuses (condemned or damaged locations).
   */
  addRecords(body: Buffer, skip?: (digest: Buffer, pack: Buffer) => boolean): void {
    this.reserve(this.count + Math.floor(body.length / ENTRY));
    for (let o = 0; o + ENTRY <= body.length; o += ENTRY) {
      if (this.find(body.subarray(o, o + 32)) !== EMPTY) continue;
      if (skip?.(body.subarray(o, o + 32), body.subarray(o + 32, o + 48))) continue;
      body.copy(this.records, this.count * ENTRY, o, o + ENTRY);
      this.insert(this.count);
      this.count++;
    }
  }

  get(digest: string): ChunkLocation | undefined {
    const n = this.find(Buffer.from(digest, 'hex'));
    return n === EMPTY ? undefined : this.location(n);
  }

  has(digest: string): boolean {
    return this.find(Buffer.from(digest, 'hex')) !== EMPTY;
  }

  /**
   * The plaintext length of a chunk, or undefined when the index lacks it: what a commit checks
   * for every reference of a manifest (131,072 for a 2 GiB image), so no key buffer or location
   * object is made per call.
   */
  lengthOf(digest: string): number | undefined {
    if (digest.length !== 64 || this.key.write(digest, 'hex') !== 32) return undefined;
    const n = this.find(this.key);
    return n === EMPTY ? undefined : this.records.readUInt32LE(n * ENTRY + 56);
  }

  packIds(): string[] {
    const ids = new Set<string>();
    for (let n = 0; n < this.count; n++) ids.add(this.records.toString('hex', n * ENTRY + 32, n * ENTRY + 48));
    return [...ids];
  }

  *entries(): IterableIterator<[string, ChunkLocation]> {
    for (let n = 0; n < this.count; n++) yield [this.records.toString('hex', n * ENTRY, n * ENTRY + 32), this.location(n)];
  }

  private location(n: number): ChunkLocation {
    const at = n * ENTRY;
    const r = this.records;
    return {
      pack: r.toString('hex', at + 32, at + 48),
      offset: r.readUInt32LE(at + 48),
      storedLength: r.readUInt32LE(at + 52),
      length: r.readUInt32LE(at + 56),
      flags: r.readUInt8(at + 60),
    };
  }

  /** Entry number of a 32-byte digest, or EMPTY. */
  private find(key: Uint8Array): number {
    const mask = this.slots.length - 1;
    let s = hashOf(key) & mask;
    for (;;) {
      const n = this.slots[s] as number;
      if (n === EMPTY) return EMPTY;
      if (this.records.compare(key, 0, 32, n * ENTRY, n * ENTRY + 32) === 0) return n;
      s = (s + 1) & mask;
    }
  }

  private insert(n: number): void {
    const mask = this.slots.length - 1;
    let s = hashOf(this.records.subarray(n * ENTRY, n * ENTRY + 32)) & mask;
    while ((this.slots[s] as number) !== EMPTY) s = (s + 1) & mask;
    this.slots[s] = n;
  }

  private ensureRoom(): void {
    this.reserve(this.count + 1);
  }

  /** Room for `total` entries, the table kept at most half full (grown by doubling). */
  private reserve(total: number): void {
    if (total * ENTRY > this.records.length) {
      let size = this.records.length;
      while (total * ENTRY > size) size *= 2;
      const bigger = Buffer.alloc(size);
      this.records.copy(bigger, 0, 0, this.count * ENTRY);
      this.records = bigger;
    }
    if (total * 2 > this.slots.length) {
      let size = this.slots.length;
      while (total * 2 > size) size *= 2;
      this.slots = new Int32Array(size).fill(EMPTY);
      for (let n = 0; n < this.count; n++) this.insert(n);
    }
  }
}

/** Digests are uniformly random: their first four bytes are a good hash. */
function hashOf(key: Uint8Array): number {
  return ((key[0] as number) | ((key[1] as number) << 8) | ((key[2] as number) << 16) | ((key[3] as number) << 24)) >>> 0;
}
