/**
 * gc's picture of the packs on disk: every index file with all its entries (duplicates and
 * condemned locations included, unlike the pool's view) and its modification time, which is
 * when the pack's chunks became visible to syncs.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { errnoCode } from '../core/errors.js';
import { decodeIndex, type IndexEntry } from './index-file.js';
import type { PoolPaths } from './pool-layout.js';

export interface PackInfo {
  id: string;
  entries: IndexEntry[];
  /** index file mtime (ms): the pack's chunks were visible from then on */
  visibleSince: number;
  /** bytes of chunk data in the pack (what its entries cover) */
  dataBytes: number;
}

export interface PackTable {
  packs: Map<string, PackInfo>;
  /** index files that failed their checksum: their packs are never touched */
  damaged: string[];
}

export async function loadPackTable(paths: PoolPaths): Promise<PackTable> {
  const packs = new Map<string, PackInfo>();
  const damaged: string[] = [];
  for (const name of (await readdir(paths.index)).filter((f) => f.endsWith('.idx')).sort()) {
    const id = name.slice(0, -'.idx'.length);
    const file = `${paths.index}/${name}`;
    let buf: Buffer;
    let mtime: number;
    try {
      [buf, mtime] = await Promise.all([readFile(file), stat(file).then((s) => s.mtimeMs)]);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      throw err;
    }
    const entries = decodeIndex(buf);
    if (typeof entries === 'string') {
      damaged.push(id);
      continue;
    }
    let dataBytes = 0;
    for (const e of entries) dataBytes += e.storedLength;
    packs.set(id, { id, entries, visibleSince: mtime, dataBytes });
  }
  return { packs, damaged };
}
