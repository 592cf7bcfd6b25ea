/** The in-memory map from digest to location, loaded from all index files when a pool opens. */
import type { IndexEntry } from './index-file.js';

export interface ChunkLocation {
  pack: string;
  offset: number;
  storedLength: number;
  length: number;
  flags: number;
}

export class ChunkIndex {
  private readonly map = new Map<string, ChunkLocation>();
  private readonly packs = new Map<string, number>();

  add(e: IndexEntry): void {
    if (this.map.has(e.digest)) return; // first location wins; duplicates are garbage for gc
    this.map.set(e.digest, { pack: e.pack, offset: e.offset, storedLength: e.storedLength, length: e.length, flags: e.flags });
    this.packs.set(e.pack, (this.packs.get(e.pack) ?? 0) + 1);
  }

  get(digest: string): ChunkLocation | undefined {
    return this.map.get(digest);
  }

  has(digest: string): boolean {
    return this.map.has(digest);
  }

  get size(): number {
    return this.map.size;
  }

  packIds(): string[] {
    return [...this.packs.keys()];
  }

  *entries(): IterableIterator<[string, ChunkLocation]> {
    yield* this.map.entries();
  }
}
