/**
 * The in-memory map from digest to location, loaded from all index files when a pool opens.
 * Entries live in one growing byte array in index-file layout (61 bytes each) with an
 * open-addressing table of entry numbers beside it: no object per chunk, so loading is a copy
 * and a million chunks cost about 70 MB, not several hundred.
 */
import { IndexRecords, type IndexEntry } from './index-file.js';

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

  /** Room for `more` entries beyond those held, made at once (fresh memory is slow to touch here: growing by doubling touched twice as much). */
  expect(more: number): void {
    this.reserve(this.count + more);
  }

  add(e: IndexEntry): void {
    this.addRecords(IndexRecords.of([e]).body());
  }

  /**
   * Adds the entries of an index file body (after its magic, without its checksum), except those
   * `skip` refuses (condemned or damaged locations). A digest already indexed keeps its location,
   * unless `newer`: then this file's location replaces it (a file listed later may be gc's copy
   * of a pack it deleted after the first was read).
   */
  addRecords(body: Buffer, skip?: (digest: Buffer, pack: Buffer) => boolean, newer = false): void {
    const n = Math.floor(body.length / ENTRY);
    this.reserve(this.count + n);
    // One copy of the whole body (a copy per record was most of a cold start's index load);
    // a record kept moves down only past a duplicate or a skipped one.
    body.copy(this.records, this.count * ENTRY, 0, n * ENTRY);
    const r = this.records;
    const base = this.count;
    for (let i = 0; i < n; i++) {
      const at = (base + i) * ENTRY;
      const known = this.findAt(r, at);
      if (known !== EMPTY && !newer) continue;
      if (skip?.(body.subarray(i * ENTRY, i * ENTRY + 32), body.subarray(i * ENTRY + 32, i * ENTRY + 48))) continue;
      if (known !== EMPTY) {
        r.copyWithin(known * ENTRY + 32, at + 32, at + ENTRY);
        continue;
      }
      if (at !== this.count * ENTRY) r.copyWithin(this.count * ENTRY, at, at + ENTRY);
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
    return locationAt(this.records, n * ENTRY);
  }

  /** Entry number of a 32-byte digest, or EMPTY. */
  private find(key: Uint8Array): number {
    return this.findAt(key, 0);
  }

  /** Entry number of the digest at `buf[off..off+32]`, or EMPTY (compared in JS: a native call per probe costs more). */
  private findAt(buf: Uint8Array, off: number): number {
    const mask = this.slots.length - 1;
    const r = this.records;
    let s = hashAt(buf, off) & mask;
    for (;;) {
      const n = this.slots[s] as number;
      if (n === EMPTY) return EMPTY;
      const at = n * ENTRY;
      let k = 0;
      while (k < 32 && r[at + k] === buf[off + k]) k++;
      if (k === 32) return n;
      s = (s + 1) & mask;
    }
  }

  private insert(n: number): void {
    const mask = this.slots.length - 1;
    let s = hashAt(this.records, n * ENTRY) & mask;
    while ((this.slots[s] as number) !== EMPTY) s = (s + 1) & mask;
    this.slots[s] = n;
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

/** The location in the record at `records[at..]`. */
function locationAt(r: Buffer, at: number): ChunkLocation {
  return {
    pack: r.toString('hex', at + 32, at + 48),
    offset: r.readUInt32LE(at + 48),
    storedLength: r.readUInt32LE(at + 52),
    length: r.readUInt32LE(at + 56),
    flags: r.readUInt8(at + 60),
  };
}

/**
 * Looks a few digests up in one index file body without building a table: for each key not yet
 * in `found`, the first record that has it and `skip` does not refuse. A scan of the files in
 * name order finds what a loaded view would.
 */
export function scanRecords(body: Buffer, keys: Buffer[], found: Array<ChunkLocation | undefined>, skip?: (digest: Buffer, pack: Buffer) => boolean): void {
  const n = Math.floor(body.length / ENTRY);
  for (let i = 0; i < n; i++) {
    const at = i * ENTRY;
    for (let k = 0; k < keys.length; k++) {
      if (found[k]) continue;
      const key = keys[k] as Buffer;
      let j = 0;
      while (j < 32 && body[at + j] === key[j]) j++;
      if (j < 32) continue;
      if (skip?.(body.subarray(at, at + 32), body.subarray(at + 32, at + 48))) continue;
      found[k] = locationAt(body, at);
    }
  }
}

/** Digests are uniformly random: their first four bytes are a good hash. */
function hashAt(b: Uint8Array, off: number): number {
  return ((b[off] as number) | ((b[off + 1] as number) << 8) | ((b[off + 2] as number) << 16) | ((b[off + 3] as number) << 24)) >>> 0;
}
