/**
 * A sync of a SQLite source: a consistent snapshot of the database (through the source's
 * shipper when the agent runs one, so it contains every frame shipped before it), written into
 * a staging directory with a small description of its WAL mark, then backed up as a directory
 * like any other (unchanged chunks are not sent again). The recovery point therefore holds
 * `<database file name>` and `holdfast-sqlite.json`; restore reads the mark from the latter.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { HoldfastError } from '../../core/errors.js';
import { backupDir } from '../backup-dir.js';
import type { PendingSync, Tracker, TrackerContext } from '../trackers/tracker.js';
import { sqliteShippers } from './sqlite-registry.js';
import { takeSnapshot, type SnapshotMark, type SqliteSnapshot } from './sqlite-snapshot.js';

export const SQLITE_POINT_META = 'holdfast-sqlite.json';

/** What a SQLite recovery point says about its snapshot (also the point's meta on the server). */
export interface SqlitePointMeta extends SnapshotMark {
  /** the database file's name inside the point */
  file: string;
  pageSize: number;
  takenAt: string;
}

export async function snapshotSqlite(source: string, path: string): Promise<SqliteSnapshot> {
  const shipper = sqliteShippers.get(source, path);
  if (shipper) return shipper.snapshot();
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new HoldfastError('SOURCE_UNREADABLE', `cannot open SQLite database ${path}: ${(err as Error).message}`, { path, source });
  }
  try {
    return takeSnapshot(db, path);
  } finally {
    db.close();
  }
}

export const sqliteTracker: Tracker = {
  name: 'sqlite-snapshot',
  async sync(ctx: TrackerContext): Promise<PendingSync> {
    const r = ctx.r;
    const stage = join(r.stateDir, 'sqlite-stage', r.source.name);
    await rm(stage, { recursive: true, force: true });
    await mkdir(stage, { recursive: true, mode: 0o700 });
    const snap = await ctx.quiesce(() => snapshotSqlite(r.source.name, r.source.path));
    const file = basename(r.source.path);
    if (file === SQLITE_POINT_META) throw new HoldfastError('BAD_ARGUMENT', `a SQLite database may not be called ${SQLITE_POINT_META}`, { path: r.source.path });
    const meta: SqlitePointMeta = { ...snap.mark, file, pageSize: snap.pageSize, takenAt: snap.takenAt };
    await writeFile(join(stage, file), snap.data, { mode: 0o600 });
    await writeFile(join(stage, SQLITE_POINT_META), `${JSON.stringify(meta)}\n`, { mode: 0o600 });
    const outcome = await backupDir({ root: stage, sink: r.sink, batcher: r.batcher, cdc: r.cdc, imageChunk: r.imageChunk, parent: ctx.parentFiles, signal: r.signal, onProgress: r.onProgress });
    const done = (): Promise<void> => rm(stage, { recursive: true, force: true });
    return {
      // The point's time is when its copy was consistent; its meta names the generation whose log records it needs.
      outcome: { ...outcome, warnings: [...ctx.warnings, ...outcome.warnings], tracker: 'sqlite-snapshot', meta: { ...meta }, pointTime: snap.takenAt },
      committed: done,
      abandon: done,
    };
  },
};
