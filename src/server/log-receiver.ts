/**
 * The server side of log shipping: one request per log record (a WAL segment, a run of SQLite
 * WAL frames). Every frame is decoded and re-hashed before it goes near a pack, the chunks are
 * made durable, then the record is committed in the pool's catalog (pool/log-chain.ts). Only
 * then does the agent hear {seq, time}: that answer is what lets PostgreSQL's archive_command
 * succeed.
 *
 * Each new record is checked against the one before it in the chain; a hole raises a 'log-gap'
 * alert (resolved by the source's next recovery point, which starts a chain the hole is behind).
 */
import type { ChunkFrame } from '../core/chunk-frames.js';
import { HoldfastError } from '../core/errors.js';
import type { ChunkRef } from '../core/manifest.js';
import type { LogKind, LogRow } from '../pool/catalog.js';
import type { CommittedLog } from '../pool/log-chain.js';
import type { ProtectionServer } from './protection-server.js';
import { uploadFrames, verifyFrames } from './upload-frames.js';

const DB_KINDS: Record<LogKind, string> = { 'pg-wal': 'postgres', 'sqlite-wal': 'sqlite' };

export interface IncomingLog {
  name: string;
  kind: LogKind;
  meta: Record<string, unknown>;
}

export async function receiveLog(server: ProtectionServer, agentId: string, source: string, log: IncomingLog, body: Buffer): Promise<CommittedLog> {
  const s = server.requireSource(source);
  if (s.agentId !== agentId) throw new HoldfastError('FORBIDDEN', `source '${source}' belongs to another agent`, { source });
  if (s.kind !== DB_KINDS[log.kind]) throw new HoldfastError('BAD_ARGUMENT', `source '${source}' is of kind ${s.kind}; it takes no ${log.kind} logs`, { source });
  const pool = server.pool;
  // Already stored: answer at once, without touching the pool (PostgreSQL retries after a crash).
  let frames = uploadFrames(body);
  const manifest: ChunkRef[] = frames.map((f) => [f.digest, f.length]);
  const prior = pool.catalog.log(source, log.name);
  if (prior && prior.manifest.length === manifest.length && prior.manifest.every(([d, l], i) => manifest[i]?.[0] === d && manifest[i]?.[1] === l)) {
    return { seq: prior.seq, time: prior.time, duplicate: true };
  }
  frames = await verifyFrames(pool.codec, body, frames);
  let committed: CommittedLog;
  try {
    committed = await storeLog(server, source, log, frames, manifest);
  } catch (err) {
    // Wherever the pool ran out (the session's lease row, a pack, the catalog), say so once.
    if (err instanceof HoldfastError && err.code === 'POOL_FULL') server.alerts.raise('pool-full', 'pool-full', 'critical', pool.dir, `log shipping of source '${source}' failed: ${err.message}`);
    throw err;
  }
  if (!committed.duplicate) checkGap(server, source, committed.seq);
  server.alerts.resolve('pool-full');
  return committed;
}

async function storeLog(server: ProtectionServer, source: string, log: IncomingLog, frames: ChunkFrame[], manifest: ChunkRef[]): Promise<CommittedLog> {
  const pool = server.pool;
  const session = pool.startSession();
  try {
    const seen = new Set<string>();
    // A chunk another session claimed is sent here as well, never borrowed: that session may be an
    // express full waiting in pg_backup_stop for this very segment (its chunks go up after it).
    const fresh = frames.filter((f) => !seen.has(f.digest) && (seen.add(f.digest), session.claim(f.digest) || !pool.index.has(f.digest)));
    await session.put(fresh.map((f) => ({ digest: f.digest, length: f.length, encoded: { data: f.data, flags: f.flags } })));
    await session.finish();
    return await pool.commitLog({ source, name: log.name, kind: log.kind, meta: log.meta, manifest }, session);
  } catch (err) {
    session.abort();
    throw err;
  }
}

/** A record that does not follow the one before it leaves a hole no restore can cross. */
function checkGap(server: ProtectionServer, source: string, seq: number): void {
  const [prev, cur] = server.pool.catalog.logs(source, seq - 1);
  if (!prev || !cur || cur.seq !== seq) return;
  const missing = gapBetween(prev, cur, (tl) => server.pool.catalog.log(source, `${hex8(tl)}.history`) !== undefined);
  if (missing) server.alerts.raise(`log-gap:${source}`, 'log-gap', 'critical', source, `the log chain of source '${source}' has a gap: ${missing} missing (between ${prev.name} and ${cur.name}); point-in-time restores cannot cross it until the next recovery point`);
}

const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** What is missing between two consecutive records, or undefined when the second follows the first. */
export function gapBetween(prev: LogRow, cur: LogRow, hasHistory: (timeline: number) => boolean): string | undefined {
  if (cur.kind === 'pg-wal') {
    if (cur.name.endsWith('.history') || cur.name.endsWith('.partial') || cur.name.endsWith('.backup')) return undefined;
    let p: LogRow | undefined = prev;
    if (prev.name.endsWith('.history') || prev.name.endsWith('.backup')) p = undefined;
    const [pt, ps, ct, cs] = [num(p?.meta.timeline), num(p?.meta.segno), num(cur.meta.timeline), num(cur.meta.segno)];
    if (pt === undefined || ps === undefined || ct === undefined || cs === undefined) return undefined;
    if (pt !== ct) return hasHistory(ct) ? undefined : `the history file of timeline ${ct}`;
    if (cs === ps + 1 || cs <= ps) return undefined; // in order, or a re-archived older segment
    return cs === ps + 2 ? `segment ${ps + 1}` : `segments ${ps + 1}–${cs - 1}`;
  }
  const [pg, cg] = [prev.meta.generation, cur.meta.generation];
  const [pl, cf] = [num(prev.meta.lastFrame), num(cur.meta.firstFrame)];
  if (pg === undefined || pg !== cg || pl === undefined || cf === undefined) return undefined;
  if (cf === pl + 1) return undefined;
  return cf > pl + 1 ? `frames ${pl + 1}–${cf - 1} of generation ${String(cg)}` : undefined;
}

/** The time range a source can be restored to: its oldest point up to its newest log record (or point). */
export function recoverableRange(server: ProtectionServer, source: string): { from: string; to: string } | null {
  const span = server.pool.catalog.pointSpan(source);
  if (!span) return null;
  const last = server.pool.catalog.lastLog(source);
  return { from: span.first, to: last && last.time > span.last ? last.time : span.last };
}
