/**
 * Restores of database sources: which recovery point and which log records a target time needs,
 * checked against the source's recoverable range and its chain (a time the chain cannot reach is
 * an error that names the range: a restore never stops short silently), and the parts of the
 * restore job spec and transfer scope that carry the logs.
 */
import { HoldfastError } from '../core/errors.js';
import type { ChunkRef } from '../core/manifest.js';
import type { RestoreJobSpec } from '../core/protocol.js';
import type { LogRow, PointRow } from '../pool/catalog.js';
import { logsForRestore, logsOfPoint } from '../pool/log-chain.js';
import type { JobRow, SourceRowC } from './control-db.js';
import { gapBetween, recoverableRange } from './log-receiver.js';
import type { ProtectionServer } from './protection-server.js';

export const isDatabaseKind = (k: SourceRowC['kind']): k is 'postgres' | 'sqlite' => k === 'postgres' || k === 'sqlite';

export interface DatabaseRestorePlan {
  point: PointRow;
  /** the log records to send, by seq (inclusive); none when from > to */
  logFrom: number;
  logTo: number;
  /** recover up to this time; absent: to the end of the logs sent */
  targetTime?: string;
  /** --point: stop as soon as the copy is consistent */
  immediate: boolean;
}

export interface DatabaseRestoreWhat {
  point?: string;
  at?: string;
  latest?: boolean;
}

function parseTime(text: string): string {
  const t = new Date(text);
  if (Number.isNaN(t.getTime())) throw new HoldfastError('BAD_ARGUMENT', `not a time: '${text}' (use ISO 8601, e.g. 2026-11-25T08:00:00Z)`);
  return t.toISOString();
}

/** Throws when consecutive records of `list` leave a hole. */
function checkChain(source: string, list: LogRow[], all: LogRow[], until: string): void {
  const history = (tl: number): boolean => all.some((l) => l.name === `${tl.toString(16).toUpperCase().padStart(8, '0')}.history`);
  for (let i = 1; i < list.length; i++) {
    const missing = gapBetween(list[i - 1] as LogRow, list[i] as LogRow, history);
    if (missing) {
      throw new HoldfastError('BAD_ARGUMENT', `source '${source}' cannot be recovered to ${until}: its log chain has a gap (${missing} missing, between ${list[i - 1]?.name} and ${list[i]?.name})`, { source });
    }
  }
}

export function planDatabaseRestore(server: ProtectionServer, s: SourceRowC, what: DatabaseRestoreWhat): DatabaseRestorePlan {
  const given = [what.point !== undefined, what.at !== undefined, what.latest === true].filter(Boolean).length;
  if (given !== 1) throw new HoldfastError('BAD_ARGUMENT', `restoring database source '${s.name}' needs exactly one of --at TIME, --point ID or --latest`);
  const logs = server.pool.catalog.logs(s.name);
  const range = recoverableRange(server, s.name);
  if (!range) throw new HoldfastError('POINT_NOT_FOUND', `source '${s.name}' has no recovery points (a restore starts from an express full)`, { source: s.name });
  if (what.point !== undefined) {
    const point = server.pool.resolvePoint(s.name, { point: what.point });
    const list = logsOfPoint(logs, point);
    checkChain(s.name, list, logs, `recovery point ${point.id}`);
    return { point, logFrom: list[0]?.seq ?? 1, logTo: list[list.length - 1]?.seq ?? 0, immediate: true };
  }
  if (what.latest) {
    const point = server.pool.resolvePoint(s.name, {});
    const { logs: list } = logsForRestore(logs, point);
    checkChain(s.name, list, logs, 'the latest time');
    return { point, logFrom: list[0]?.seq ?? 1, logTo: list[list.length - 1]?.seq ?? 0, immediate: false };
  }
  const at = parseTime(what.at as string);
  if (at < range.from || at > range.to) {
    throw new HoldfastError('BAD_ARGUMENT', `${at} is outside the recoverable range of source '${s.name}': ${range.from} – ${range.to}`, { source: s.name, ...range });
  }
  const point = server.pool.resolvePoint(s.name, { at });
  const { logs: list, reaches } = logsForRestore(logs, point, at);
  if (!reaches) {
    throw new HoldfastError('BAD_ARGUMENT', `source '${s.name}' cannot be recovered to ${at}: no shipped log reaches it (recoverable range ${range.from} – ${range.to})`, { source: s.name, ...range });
  }
  checkChain(s.name, list, logs, at);
  return { point, logFrom: list[0]?.seq ?? 1, logTo: list[list.length - 1]?.seq ?? 0, targetTime: at, immediate: false };
}

/** Job params of a database restore (stored with the job; the spec is rebuilt from them). */
export function databaseRestoreParams(plan: DatabaseRestorePlan, o: { start: boolean; port?: number }): Record<string, unknown> {
  return {
    point: plan.point.id,
    database: { targetTime: plan.targetTime, immediate: plan.immediate, start: o.start, port: o.port, logFrom: plan.logFrom, logTo: plan.logTo },
  };
}

type DbParams = { targetTime?: string; immediate?: boolean; start?: boolean; port?: number; logFrom?: number; logTo?: number };

function logsOfJob(server: ProtectionServer, job: JobRow): LogRow[] {
  const d = job.params.database as DbParams | undefined;
  if (!d || d.logFrom === undefined || d.logTo === undefined || d.logFrom > d.logTo) return [];
  const list = server.pool.catalog.logs(job.source, d.logFrom).filter((l) => l.seq <= (d.logTo as number));
  if (list.length !== d.logTo - d.logFrom + 1) throw new HoldfastError('CONFLICT', `log records ${d.logFrom}–${d.logTo} of source '${job.source}' are no longer all stored (pruned since the restore was asked for)`);
  return list;
}

/** The database parts of a restore job's spec (undefined for other sources). */
export function databaseSpecParts(server: ProtectionServer, job: JobRow, s: SourceRowC, p: PointRow): Pick<RestoreJobSpec, 'database' | 'logs'> {
  const d = job.params.database as DbParams | undefined;
  if (!d || !isDatabaseKind(s.kind)) return {};
  return {
    database: {
      kind: s.kind,
      ...(d.targetTime ? { targetTime: d.targetTime } : {}),
      ...(d.immediate ? { immediate: true } : {}),
      start: d.start !== false,
      ...(p.meta ? { pointMeta: p.meta } : {}),
      ...(d.port ? { port: d.port } : {}),
      ...(s.options.postgres?.bin ? { bin: s.options.postgres.bin } : {}),
    },
    logs: logsOfJob(server, job).map((l) => ({ name: l.name, seq: l.seq, kind: l.kind, time: l.time, meta: l.meta, manifest: l.manifest })),
  };
}

/** Raw chunk lists the restore job may read (the log records it was given). */
export function logScope(server: ProtectionServer, job: JobRow): ChunkRef[][] {
  return logsOfJob(server, job).map((l) => l.manifest);
}
