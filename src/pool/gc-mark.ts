/**
 * gc's mark phase: the set of every digest some committed recovery point needs. Marking reads
 * manifests, so it takes time while syncs commit new points; `markNew` adds the points committed
 * since, and the condemn transaction checks that none is left unmarked.
 */
import { HoldfastError, isHoldfastError, throwIfAborted } from '../core/errors.js';
import type { Pool } from './pool.js';
import { forEachPointChunk } from './point-digests.js';
import type { PageSpan } from '../core/manifest-io.js';
import { logMarkKey } from './catalog.js';

export interface Marks {
  live: Set<string>;
  /** ids of the points marked */
  points: Set<string>;
  /** log records marked (logMarkKey) */
  logs?: Set<string>;
  /** manifest pages walked: their references are in `live` already, so they are not read again */
  pages?: Map<string, PageSpan>;
}

export async function markNew(pool: Pool, marks: Marks, o: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {}): Promise<number> {
  const todo = pool.catalog.pointIds().filter((id) => !marks.points.has(id));
  let done = 0;
  for (const id of todo) {
    throwIfAborted(o.signal);
    const p = pool.catalog.point(id);
    if (!p) continue; // deleted meanwhile
    try {
      await forEachPointChunk(pool.reader, p.manifest, (d) => marks.live.add(d), o.signal, (marks.pages ??= new Map()));
    } catch (err) {
      if (!isHoldfastError(err) || (err.code !== 'CHUNK_MISSING' && err.code !== 'CHUNK_CORRUPT')) throw err;
      // Without the manifest the point's chunks are unknown, and any of them might be condemned.
      throw new HoldfastError(
        'POOL_CORRUPT',
        `gc stopped: the manifest of recovery point ${p.id} (source '${p.source}') cannot be read (${err.message}); run 'holdfast verify', and delete the point if it cannot be repaired`,
        { point: p.id, pool: pool.dir },
      );
    }
    marks.points.add(id);
    o.onProgress?.(++done, todo.length);
  }
  // Log records hold raw chunks, no manifest to read: their chunk lists are in the catalog.
  const logMarks = (marks.logs ??= new Set());
  let newLogs = 0;
  for (const l of pool.catalog.allLogs()) {
    const key = logMarkKey(l);
    if (logMarks.has(key)) continue;
    for (const [d] of l.manifest) marks.live.add(d);
    logMarks.add(key);
    newLogs++;
  }
  return todo.length + newLogs;
}
