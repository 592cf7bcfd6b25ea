/**
 * Storage allocation as it stands: the pool's file system (capacity, used, free) and, per source,
 * logical bytes (its latest point and all its points), unique bytes (stored bytes of chunks only
 * this source needs: what deleting it would free after gc) and shared bytes (stored bytes of
 * chunks it needs that other sources need too). A source needs the chunks of its points and of
 * its log records (a database's shipped WAL), as gc's mark does. Reads every manifest.
 */
import { statfs } from 'node:fs/promises';
import type { Pool } from './pool.js';
import { forEachPointChunk } from './point-digests.js';
import type { PageSpan } from '../core/manifest-io.js';
import { defaultAllocation, type Allocation } from './allocation.js';

export interface SourceUsage {
  source: string;
  /** its points' kind (dir, image), or the log kind of a source with log records only */
  kind: string;
  points: number;
  latestLogicalBytes: number;
  allLogicalBytes: number;
  uniqueBytes: number;
  sharedBytes: number;
  /** DPM 2007's default allocation for this source's data size and the given retention */
  defaultAllocation: Allocation;
}

export interface PoolUsage {
  pool: string;
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  /** pack bytes in the pool */
  storedBytes: number;
  packs: number;
  /** stored bytes no point or log record needs (gc would free them) */
  unreferencedBytes: number;
  retentionDays: number;
  sources: SourceUsage[];
}

const SHARED = -1;

export async function poolUsage(pool: Pool, o: { retentionDays?: number; signal?: AbortSignal } = {}): Promise<PoolUsage> {
  const retentionDays = o.retentionDays ?? 5;
  const fs = await statfs(pool.dir);
  const sources = pool.catalog.sources();
  // digest -> index of the one source that needs it, or SHARED
  const owner = new Map<string, number>();
  const sharedBy = new Map<string, Set<number>>();
  const rows: SourceUsage[] = [];
  const need = (d: string, i: number): void => {
    const cur = owner.get(d);
    if (cur === undefined) owner.set(d, i);
    else if (cur !== i) {
      if (cur !== SHARED) {
        owner.set(d, SHARED);
        sharedBy.set(d, new Set([cur, i]));
      } else sharedBy.get(d)?.add(i);
    }
  };
  for (const [i, s] of sources.entries()) {
    const points = pool.catalog.points(s.name);
    const latest = points.at(-1);
    rows.push({
      source: s.name,
      kind: s.kind,
      points: points.length,
      latestLogicalBytes: latest?.logicalBytes ?? 0,
      allLogicalBytes: points.reduce((n, p) => n + p.logicalBytes, 0),
      uniqueBytes: 0,
      sharedBytes: 0,
      defaultAllocation: defaultAllocation(latest?.logicalBytes ?? 0, retentionDays),
    });
    // need() is idempotent per source: a page this source's earlier points had is not read again.
    const seen = new Map<string, PageSpan>();
    for (const p of points) await forEachPointChunk(pool.reader, p.manifest, (d) => need(d, i), o.signal, seen);
  }
  // Log records: their chunk lists are in the catalog. A source may have records before its first
  // point (archiving starts before the first express full ends): it gets a row of its own.
  const rowOf = new Map(rows.map((r, i) => [r.source, i]));
  for (const l of pool.catalog.allLogs()) {
    let i = rowOf.get(l.source);
    if (i === undefined) {
      i = rows.push({ source: l.source, kind: l.kind, points: 0, latestLogicalBytes: 0, allLogicalBytes: 0, uniqueBytes: 0, sharedBytes: 0, defaultAllocation: defaultAllocation(0, retentionDays) }) - 1;
      rowOf.set(l.source, i);
    }
    for (const [d] of l.manifest) need(d, i);
  }
  let referenced = 0;
  for (const [d, who] of owner) {
    const stored = pool.index.get(d)?.storedLength ?? 0;
    referenced += stored;
    if (who !== SHARED) (rows[who] as SourceUsage).uniqueBytes += stored;
    else for (const j of sharedBy.get(d) ?? []) (rows[j] as SourceUsage).sharedBytes += stored;
  }
  let chunkBytes = 0;
  for (const [, loc] of pool.index.entries()) chunkBytes += loc.storedLength;
  const stored = await pool.storedBytes();
  return {
    pool: pool.dir,
    capacityBytes: fs.blocks * fs.bsize,
    usedBytes: (fs.blocks - fs.bfree) * fs.bsize,
    freeBytes: fs.bavail * fs.bsize,
    storedBytes: stored.bytes,
    packs: stored.packs,
    unreferencedBytes: Math.max(0, chunkBytes - referenced),
    retentionDays,
    sources: rows,
  };
}
