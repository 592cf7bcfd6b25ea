/**
 * Verify: proves that every recovery point can be restored. The quick pass checks that indexes
 * are whole, every pack they name exists and is long enough, and every chunk every manifest
 * needs is indexed. `full` also reads every pack and re-hashes every chunk. Damage is mapped
 * back to the recovery points and files that need it.
 */
import { open } from 'node:fs/promises';
import { readManifest } from '../core/manifest-io.js';
import { hasContent } from '../core/manifest.js';
import { errnoCode, isHoldfastError } from '../core/errors.js';
import type { DecodeItem } from '../workers/codec-pool.js';
import { parseTail, parseTrailer, TAIL_BYTES } from './pack-format.js';
import type { ChunkLocation } from './chunk-index.js';
import type { Pool } from './pool.js';

export interface DamagedChunk {
  digest: string;
  pack: string;
  reason: string;
}

export interface DamagedPoint {
  point: string;
  source: string;
  time: string;
  reason?: string;
  files: string[];
}

export interface VerifyReport {
  ok: boolean;
  full: boolean;
  points: number;
  chunks: number;
  packs: number;
  bytesRead: number;
  problems: string[];
  damagedChunks: DamagedChunk[];
  damagedPoints: DamagedPoint[];
}

export async function verifyPool(pool: Pool, o: { full: boolean; onProgress?: (done: number, total: number) => void }): Promise<VerifyReport> {
  const problems: string[] = pool.damagedIndexes.map((d) => `index ${d}`);
  const damaged = new Map<string, DamagedChunk>();
  const byPack = new Map<string, Array<[string, ChunkLocation]>>();
  for (const [digest, loc] of pool.index.entries()) {
    let list = byPack.get(loc.pack);
    if (!list) byPack.set(loc.pack, (list = []));
    list.push([digest, loc]);
  }
  let bytesRead = 0;
  let packsDone = 0;
  for (const [pack, list] of byPack) {
    const issue = o.full ? await checkPackFull(pool, pack, list, damaged, problems) : await checkPackQuick(pool, pack, list, damaged, problems);
    bytesRead += issue;
    o.onProgress?.(++packsDone, byPack.size);
  }

  const damagedPoints: DamagedPoint[] = [];
  const points = pool.catalog.points();
  for (const p of points) {
    const files = new Set<string>();
    let reason: string | undefined;
    try {
      for await (const e of readManifest(pool.reader, p.manifest)) {
        if (!hasContent(e)) continue;
        for (const [digest] of e.chunks) {
          if (damaged.has(digest)) files.add(e.path);
          else if (!pool.index.has(digest)) {
            files.add(e.path);
            damaged.set(digest, { digest, pack: '-', reason: 'not in any index' });
          }
        }
      }
    } catch (err) {
      if (!isHoldfastError(err)) throw err;
      reason = `manifest unreadable: ${err.message}`;
    }
    if (reason || files.size > 0) damagedPoints.push({ point: p.id, source: p.source, time: p.time, reason, files: [...files].sort() });
  }
  const damagedChunks = [...damaged.values()];
  return {
    ok: problems.length === 0 && damagedChunks.length === 0 && damagedPoints.length === 0,
    full: o.full,
    points: points.length,
    chunks: pool.index.size,
    packs: byPack.size,
    bytesRead,
    problems,
    damagedChunks,
    damagedPoints,
  };
}

function markPack(list: Array<[string, ChunkLocation]>, pack: string, reason: string, damaged: Map<string, DamagedChunk>): void {
  for (const [digest] of list) damaged.set(digest, { digest, pack, reason });
}

/** Presence, length and tail of a pack: one small read each, no chunk data. */
async function checkPackQuick(pool: Pool, pack: string, list: Array<[string, ChunkLocation]>, damaged: Map<string, DamagedChunk>, problems: string[]): Promise<number> {
  let size: number;
  const tailBuf = Buffer.alloc(TAIL_BYTES);
  try {
    const fh = await open(pool.paths.pack(pack), 'r');
    try {
      size = (await fh.stat()).size;
      if (size >= TAIL_BYTES) await fh.read(tailBuf, 0, TAIL_BYTES, size - TAIL_BYTES);
    } finally {
      await fh.close();
    }
  } catch (err) {
    markPack(list, pack, errnoCode(err) === 'ENOENT' ? 'pack file missing' : `pack unreadable: ${(err as Error).message}`, damaged);
    return 0;
  }
  let dataEnd = size - TAIL_BYTES;
  const tail = size >= TAIL_BYTES ? parseTail(tailBuf) : 'pack too short';
  if (typeof tail === 'string') problems.push(`pack ${pack}: ${tail}`);
  else dataEnd -= tail.trailerBytes;
  for (const [digest, loc] of list) {
    if (loc.offset + loc.storedLength > dataEnd) damaged.set(digest, { digest, pack, reason: 'pack file is truncated' });
  }
  return 0;
}

async function checkPackFull(pool: Pool, pack: string, list: Array<[string, ChunkLocation]>, damaged: Map<string, DamagedChunk>, problems: string[]): Promise<number> {
  let buf: Buffer;
  try {
    const fh = await open(pool.paths.pack(pack), 'r');
    try {
      buf = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (err) {
    markPack(list, pack, errnoCode(err) === 'ENOENT' ? 'pack file missing' : `pack unreadable: ${(err as Error).message}`, damaged);
    return 0;
  }
  // The trailer is checked as well, since it is what an index rebuild would trust.
  const tail = parseTail(buf.subarray(Math.max(0, buf.length - TAIL_BYTES)));
  if (typeof tail === 'string') problems.push(`pack ${pack}: ${tail}`);
  else {
    const trailer = parseTrailer(buf.subarray(buf.length - TAIL_BYTES - tail.trailerBytes, buf.length - TAIL_BYTES), tail.hash);
    if (typeof trailer === 'string') problems.push(`pack ${pack}: ${trailer}`);
  }
  const items: DecodeItem[] = [];
  const digests: string[] = [];
  for (const [digest, loc] of list) {
    if (loc.offset + loc.storedLength > buf.length) {
      damaged.set(digest, { digest, pack, reason: 'pack file is truncated' });
      continue;
    }
    items.push({ data: buf.subarray(loc.offset, loc.offset + loc.storedLength), flags: loc.flags, length: loc.length, digest });
    digests.push(digest);
  }
  const results = await pool.codec.decode(items);
  results.forEach((r, i) => {
    if (!r.ok) {
      const digest = digests[i] as string;
      damaged.set(digest, { digest, pack, reason: r.reason });
    }
  });
  return buf.length;
}
