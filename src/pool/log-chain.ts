/**
 * A source's log chain: shipped log records (PostgreSQL WAL segments, SQLite WAL frame runs)
 * that extend its recoverable range past its latest recovery point (docs/design.md, "Log chains").
 *
 * A record commits like a point: its chunks are durable and indexed first (the caller's write
 * session has finished), then one IMMEDIATE catalog transaction checks them against a view of the
 * index as new as the condemned set and inserts the row. The row is the commit; its `time` is
 * taken inside that transaction, so everything in the record was committed at or before it.
 *
 * Committing is idempotent, as PostgreSQL's archive_command contract needs: the same name with
 * the same bytes again is a success (`duplicate`), the same name with other bytes is CONFLICT.
 */
import { HoldfastError } from '../core/errors.js';
import { sameChunkRefs, type ChunkRef } from '../core/manifest.js';
import type { LogKind, LogRow, PointRow } from './catalog.js';
import type { Pool } from './pool.js';
import type { WriteSession } from './write-session.js';
import { asPoolError } from './pool-full.js';

export interface NewLog {
  source: string;
  name: string;
  kind: LogKind;
  meta: Record<string, unknown>;
  manifest: ChunkRef[];
}

export interface CommittedLog {
  seq: number;
  time: string;
  duplicate: boolean;
}

/**
 * Commits a log record whose chunks `session` stored (its finish() has resolved). The session's
 * lease is released either way. A record needs no parent: it may arrive before the source's
 * first point (archiving starts before the first express full ends).
 */
export async function commitLog(pool: Pool, row: NewLog, session: WriteSession | undefined): Promise<CommittedLog> {
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      // A fresh view at the current epoch: a chunk it lacks was condemned (or never stored).
      await pool.freshView();
      const epoch = pool.viewEpoch;
      type Outcome = { done: CommittedLog } | { again: true } | { lease: true } | { gone: string } | { conflict: LogRow };
      const outcome = pool.catalog.immediate((): Outcome => {
        const prior = pool.catalog.log(row.source, row.name);
        if (prior) return sameChunkRefs(prior.manifest, row.manifest) ? { done: { seq: prior.seq, time: prior.time, duplicate: true } } : { conflict: prior };
        if (pool.catalog.epoch() !== epoch) return { again: true };
        if (session && !session.lease.valid()) return { lease: true };
        for (const [d, l] of row.manifest) {
          const loc = pool.index.get(d);
          if (!loc || loc.length !== l) return { gone: d };
        }
        const seq = (pool.catalog.lastLog(row.source)?.seq ?? 0) + 1;
        const time = new Date().toISOString();
        const bytes = row.manifest.reduce((n, [, l]) => n + l, 0);
        pool.catalog.insertLog({ ...row, seq, time, bytes });
        return { done: { seq, time, duplicate: false } };
      });
      if ('done' in outcome) return outcome.done;
      if ('again' in outcome) continue;
      if ('conflict' in outcome) {
        throw new HoldfastError(
          'CONFLICT',
          `log '${row.name}' of source '${row.source}' is already stored (seq ${outcome.conflict.seq}, ${outcome.conflict.bytes} bytes) with different content; refusing to replace it`,
          { source: row.source, name: row.name },
        );
      }
      if ('lease' in outcome) throw new HoldfastError('RETRY', `the lease of log '${row.name}' expired before it was committed; send it again`, { source: row.source });
      throw new HoldfastError('RETRY', `chunk ${outcome.gone} of log '${row.name}' is not in the pool (removed by gc or never sent); send the log again`, { digest: outcome.gone });
    }
    throw new HoldfastError('RETRY', `storage pool ${pool.dir} kept changing under the commit of log '${row.name}'; send it again`, { pool: pool.dir });
  } catch (err) {
    throw asPoolError(err, pool.dir);
  } finally {
    session?.close();
  }
}

/**
 * The seq of the first log record a point needs, or undefined when the chain cannot say (then
 * nothing before the point is pruned). PostgreSQL: the first segment at or after the backup's
 * start WAL file on its timeline (names sort by timeline, then segment). SQLite: the first record
 * of the point's generation.
 */
export function firstNeededSeq(logs: LogRow[], point: Pick<PointRow, 'meta'>): number | undefined {
  const m = point.meta ?? {};
  if (typeof m.startWal === 'string') {
    const start = m.startWal;
    return logs.find((l) => l.kind === 'pg-wal' && !l.name.endsWith('.history') && l.name >= start)?.seq;
  }
  if (m.generation !== undefined) return logs.find((l) => l.kind === 'sqlite-wal' && l.meta.generation === m.generation)?.seq;
  return undefined;
}

/**
 * The log records a restore of `point` itself needs (`restore --point`): PostgreSQL, from its
 * first needed segment through its backup's stop segment (and timeline history files among them),
 * without which the copy never becomes consistent. None for a SQLite point: its copy is whole.
 */
export function logsOfPoint(logs: LogRow[], point: PointRow): LogRow[] {
  const from = firstNeededSeq(logs, point);
  if (from === undefined) return [];
  const stop = point.meta?.stopWal;
  if (typeof stop !== 'string') return [];
  return logs.filter((l) => l.seq >= from && (l.name <= stop || l.name.endsWith('.history')));
}

/**
 * The log records a prune removes when `oldest` is the oldest point that stays: those before the
 * first one it needs (later points need later records). None without a point, or when the chain
 * cannot say what the point needs.
 */
export function logsBefore(logs: LogRow[], oldest: Pick<PointRow, 'meta'> | undefined): LogRow[] {
  const from = oldest && firstNeededSeq(logs, oldest);
  return from === undefined ? [] : logs.filter((l) => l.seq < from);
}

/**
 * Removes a source's log records older than what its oldest recovery point needs, and returns
 * them. Records a kept point needs are never removed; a source without points keeps its whole
 * chain. Decided and done in one transaction, so a point deleted meanwhile cannot slip in between.
 */
export function pruneLogs(pool: Pool, source: string): LogRow[] {
  return pool.catalog.immediate(() => {
    const gone = logsBefore(pool.catalog.logs(source), pool.catalog.pointMarks(source)[0]);
    const last = gone.at(-1);
    if (last) pool.catalog.deleteLogsBefore(source, last.seq + 1);
    return gone;
  });
}

/**
 * The log records a restore to `target` needs after `point`: every record from the point's first
 * needed one to the end of the chain, and whether the chain reaches the target (a record durable
 * at or after it). Not just up to that first record: a record's time is when it became durable,
 * not when its content ends — a segment closed before the target but shipped after it (the agent
 * was down) holds nothing past its close, and the changes up to the target are in later records.
 * The database stops at the target itself; extra records cost only transfer.
 */
export function logsForRestore(logs: LogRow[], point: PointRow, target?: string): { logs: LogRow[]; reaches: boolean } {
  const from = firstNeededSeq(logs, point) ?? logs.find((l) => l.time >= point.time)?.seq;
  if (from === undefined) return { logs: [], reaches: target === undefined || target <= point.time };
  const out = logs.filter((l) => l.seq >= from);
  return { logs: out, reaches: target === undefined || out.some((l) => l.time >= target) };
}
