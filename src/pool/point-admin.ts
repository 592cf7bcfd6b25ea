/**
 * Removing and pinning recovery points, and pruning them by a retention policy. Deleting a point
 * removes its catalog row (that is the deletion), then its point file; its chunks stay until the
 * next gc finds nothing else needs them.
 */
import { unlink } from 'node:fs/promises';
import { HoldfastError } from '../core/errors.js';
import type { PointRow } from './catalog.js';
import type { Pool } from './pool.js';
import { applyRetention, type RetentionPolicy } from './retention.js';
import { writeFileDurable } from './durable.js';
import { pruneLogs } from './log-chain.js';

export async function deletePoint(pool: Pool, source: string, id: string): Promise<PointRow> {
  const p = pool.resolvePoint(source, { point: id });
  if (p.pinned) throw new HoldfastError('CONFLICT', `recovery point ${p.id} of source '${source}' is pinned; unpin it first`, { point: p.id, source });
  pool.catalog.deletePoint(p.id);
  await unlink(pool.paths.pointFile(p.id)).catch(() => undefined);
  return p;
}

export async function setPinned(pool: Pool, source: string, id: string, pinned: boolean): Promise<PointRow> {
  const p = pool.resolvePoint(source, { point: id });
  pool.catalog.setPinned(p.id, pinned);
  // The point file is a copy of the row: keep it true.
  await writeFileDurable(pool.paths.pointFile(p.id), `${JSON.stringify({ ...p, pinned })}\n`);
  return { ...p, pinned };
}

export interface PruneResult {
  dryRun: boolean;
  sources: Array<{
    source: string;
    keep: Array<{ id: string; time: string; reasons: string[] }>;
    remove: Array<{ id: string; time: string }>;
  }>;
  removed: number;
  kept: number;
  /** log records no kept point needs any more, removed */
  logsRemoved?: number;
}

export async function prunePoints(pool: Pool, policy: RetentionPolicy, o: { source?: string; dryRun?: boolean } = {}): Promise<PruneResult> {
  const sources = o.source ? [pool.requireSource(o.source).name] : pool.catalog.sources().map((s) => s.name);
  const out: PruneResult = { dryRun: o.dryRun === true, sources: [], removed: 0, kept: 0 };
  for (const source of sources) {
    const d = applyRetention(pool.catalog.points(source), policy);
    for (const p of d.remove) {
      if (o.dryRun) continue;
      pool.catalog.deletePoint(p.id);
      await unlink(pool.paths.pointFile(p.id)).catch(() => undefined);
    }
    out.sources.push({
      source,
      keep: d.keep.map((k) => ({ id: k.point.id, time: k.point.time, reasons: k.reasons })),
      remove: d.remove.map((p) => ({ id: p.id, time: p.time })),
    });
    out.removed += d.remove.length;
    out.kept += d.keep.length;
    if (!o.dryRun) out.logsRemoved = (out.logsRemoved ?? 0) + pruneLogs(pool, source);
  }
  return out;
}
