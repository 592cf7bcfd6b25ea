/**
 * Restore of a SQLite source to a time: the recovery point (the snapshot and its mark) is
 * restored into a scratch directory, the shipped log records the server picked are replayed on
 * it up to the target (sqlite-rebuild.ts), the result must pass PRAGMA integrity_check, and
 * only then is it renamed into place. `to` is the database file to write, or an existing
 * directory to write it into under its original name; an existing file is never overwritten.
 */
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { ChunkSource } from '../../core/chunk-io.js';
import type { RestoreJobSpec, RestoreReport } from '../../core/protocol.js';
import { HoldfastError } from '../../core/errors.js';
import type { ChunkRef } from '../../core/manifest.js';
import type { CodecPool } from '../../workers/codec-pool.js';
import { restore } from '../restore.js';
import { RemoteSource } from '../remote/remote-source.js';
import type { ServerClient } from '../remote/server-client.js';
import { checkSqlite } from './sqlite-check.js';
import { parseSqliteLogMeta, rebuildSqlite, type RebuildResult, type SqliteLogRecord } from './sqlite-rebuild.js';
import { SQLITE_POINT_META, type SqlitePointMeta } from './sqlite-sync.js';

export interface SqliteLogRef {
  name: string;
  kind: string;
  meta: unknown;
  manifest: ChunkRef[];
}

export interface SqliteRestoreOptions {
  chunks: ChunkSource;
  /** the recovery point's manifest */
  manifest: ChunkRef[];
  logs: SqliteLogRef[];
  targetTime?: string;
  to: string;
  /** a directory the agent may use and remove */
  scratch: string;
  codec: CodecPool;
  label: string;
  signal?: AbortSignal;
}

export interface SqliteRestoreOutcome extends RebuildResult {
  file: string;
  check: string;
  warnings: string[];
}

async function readAll(chunks: ChunkSource, manifest: ChunkRef[], signal?: AbortSignal): Promise<Buffer> {
  if (manifest.length === 0) return Buffer.alloc(0);
  return Buffer.concat(await chunks.read(manifest, signal));
}

export async function restoreSqlite(o: SqliteRestoreOptions): Promise<SqliteRestoreOutcome> {
  const scratch = resolve(o.scratch);
  await rm(scratch, { recursive: true, force: true });
  await mkdir(dirname(scratch), { recursive: true, mode: 0o700 });
  let tmp: string | undefined;
  try {
    const r = await restore({ source: o.chunks, manifest: o.manifest, kind: 'dir', target: scratch, overwrite: false, label: o.label, codec: o.codec, signal: o.signal });
    let meta: SqlitePointMeta;
    try {
      meta = JSON.parse(await readFile(join(scratch, SQLITE_POINT_META), 'utf8')) as SqlitePointMeta;
    } catch (err) {
      throw new HoldfastError('BAD_ARGUMENT', `${o.label} is not a SQLite snapshot (no readable ${SQLITE_POINT_META}: ${(err as Error).message})`);
    }
    const to = resolve(o.to);
    const isDir = (await stat(to).catch(() => undefined))?.isDirectory() ?? false;
    const file = isDir ? join(to, meta.file) : to;
    if (await stat(file).catch(() => undefined)) throw new HoldfastError('TARGET_NOT_EMPTY', `${file} exists; restore a SQLite database to a new file or a directory without it`, { path: file });
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const records: SqliteLogRecord[] = o.logs
      .filter((l) => l.kind === 'sqlite-wal')
      .map((l) => ({ name: l.name, meta: parseSqliteLogMeta(l.meta, l.name), read: () => readAll(o.chunks, l.manifest, o.signal) }));
    tmp = `${file}.holdfast-restore`;
    await rm(tmp, { force: true });
    const base = await readFile(join(scratch, meta.file));
    const built = await rebuildSqlite({ base, baseMark: meta, records, targetTime: o.targetTime, out: tmp, signal: o.signal });
    const check = await checkSqlite({ file: tmp, signal: o.signal });
    if (!check.ok) throw new HoldfastError('JOB_FAILED', `the restored SQLite database fails its check: ${check.detail}`, { path: file });
    // The check opened the file: drop its empty WAL and index so only the database is moved.
    await rm(`${tmp}-wal`, { force: true });
    await rm(`${tmp}-shm`, { force: true });
    await rename(tmp, file);
    tmp = undefined;
    return { ...built, file, check: check.detail, warnings: r.warnings };
  } finally {
    if (tmp) await rm(tmp, { force: true });
    await rm(scratch, { recursive: true, force: true });
  }
}

export interface SqliteRestoreJobContext {
  client: ServerClient;
  codec: CodecPool;
  /** the agent's tracker state directory: the scratch copy goes below it */
  stateDir: string;
  signal: AbortSignal;
}

/** A server restore job of a SQLite source: rebuild, check, place, and report to the server. */
export async function runSqliteRestoreJob(ctx: SqliteRestoreJobContext, spec: RestoreJobSpec, headers: Record<string, string>): Promise<Record<string, unknown>> {
  const out = await restoreSqlite({
    chunks: new RemoteSource(ctx.client, spec.id, headers),
    manifest: spec.point.manifest,
    logs: spec.logs ?? [],
    targetTime: spec.database?.targetTime,
    to: spec.target,
    scratch: join(ctx.stateDir, 'sqlite-restore', spec.id),
    codec: ctx.codec,
    label: `recovery point ${spec.point.id} of source '${spec.source.name}'`,
    signal: ctx.signal,
  });
  const report: RestoreReport = {
    entries: 1,
    bytes: out.bytes,
    target: out.file,
    warnings: out.warnings,
    database: { kind: 'sqlite', generation: out.generation ?? null, frame: out.frame, records: out.records, frames: out.frames, reached: out.reached ?? null, check: out.check },
  };
  return ctx.client.json('POST', `/api/v1/agent/jobs/${spec.id}/complete-restore`, report, { signal: ctx.signal, headers });
}
