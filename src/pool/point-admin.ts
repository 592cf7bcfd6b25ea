/**
 * Removing and pinning recovery points, and pruning them by a retention policy. Deleting a point
 * removes its catalog row (that is the deletion), then its point file; its chunks stay until the
 * next gc finds nothing else needs them.
 */
import { unlink } from 'node:fs/promises';
import { HoldfastError } from '../core/errors.js';
import type { LogRow, PointRow } from './catalog.js';
import type { Pool } from './pool.js';
import { applyRetention, type RetentionPolicy } from './retention.js';
import { writeFileDurable } from './durable.js';
import { logsBefore, pruneLogs } from './log-chain.js';

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

/** A source's log records a prune removes: every record before the first its oldest kept point needs. */
export interface LogsPruned {
  records: number;
  bytes: number;
  /** the first and last removed (by seq; everything between goes too) */
  first: string | null;
  last: string | null;
}

export interface PruneResult {
  dryRun: boolean;
  sources: Array<{
    source: string;
    keep: Array<{ id: string; time: string; reasons: string[] }>;
    remove: Array<{ id: string; time: string }>;
    logs: LogsPruned;
  }>;
  removed: number;
  kept: number;
  /** log records no kept point needs any more (with dryRun: would remove), and their bytes */
  logsRemoved: number;
  logBytesRemoved: number;
}

function logsPruned(logs: LogRow[]): LogsPruned {
  return { records: logs.length, bytes: logs.reduce((n, l) => n + l.bytes, 0), first: logs[0]?.name ?? null, last: logs.at(-1)?.name ?? null };
}

export async function prunePoints(pool: Pool, policy: RetentionPolicy, o: { source?: string; dryRun?: boolean } = {}): Promise<PruneResult> {
  const sources = o.source ? [pool.requireSource(o.source).name] : pool.catalog.sources().map((s) => s.name);
  const out: PruneResult = { dryRun: o.dryRun === true, sources: [], removed: 0, kept: 0, logsRemoved: 0, logBytesRemoved: 0 };
  for (const source of sources) {
    const points = pool.catalog.pointMarks(source);
    const d = applyRetention(points, policy);
    for (const p of d.remove) {
      if (o.dryRun) continue;
      pool.catalog.deletePoint(p.id);
      await unlink(pool.paths.pointFile(p.id)).catch(() => undefined);
    }
    // A database's log chain goes only with the points that needed it: what the oldest kept point needs stays.
    const kept = new Set(d.keep.map((k) => k.point.id));
    const logs = logsPruned(o.dryRun ? logsBefore(pool.catalog.logs(source), points.find((p) => kept.has(p.id))) : pruneLogs(pool, source));
    out.sources.push({
      source,
      keep: d.keep.map((k) => ({ id: k.point.id, time: k.point.time, reasons: k.reasons })),
      remove: d.remove.map((p) => ({ id: p.id, time: p.time })),
      logs,
    });
    out.removed += d.remove.length;
    out.kept += d.keep.length;
    out.logsRemoved += logs.records;
    out.logBytesRemoved += logs.bytes;
  }
  return out;
}
