/**
 * Rebuilds a SQLite database file from a snapshot and the shipped log records after it, up to a
 * target time. Records come in the order the server committed them (seq). Two kinds:
 *  - 'frames': whole committed transactions of one WAL generation, frames firstFrame..lastFrame;
 *    each frame is a page image, applied in order; a commit frame sets the file's size.
 *  - 'base': a consistent copy taken when a new generation started (the WAL was reset before
 *    the shipper read all of the previous one): it replaces the file, and that generation's
 *    frames continue after its mark.
 * A record is applied only when it was captured at or before the target, so no change committed
 * after the target is ever applied. Records captured before the snapshot are in it and skipped.
 * Frames captured after it may overlap it (marks are lower bounds): replaying them is harmless
 * because such a record always reaches past the snapshot's own frame (the last image of each
 * page wins); replaying older frames and stopping short of it would mix times. A generation without a base, or a hole in
 * a generation's frames, is a broken chain: the rebuild says how far it could go, never silently
 * stops short.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { HoldfastError } from '../../core/errors.js';
import { framesOf, FRAME_HEADER_BYTES } from './sqlite-wal.js';

export interface SqliteLogMeta {
  type: 'frames' | 'base';
  generation: string;
  salt1: number;
  salt2: number;
  pageSize: number;
  /** frames: the first frame of the record; base: 0 */
  firstFrame: number;
  /** frames: the last (a commit frame); base: the frame its copy contains at least */
  lastFrame: number;
  /** frames: database size in pages after the last commit */
  commitPages?: number;
  /** when the agent read it: every change inside was committed at or before this time */
  capturedAt: string;
  /** base: a large copy comes in parts 0..parts-1 (consecutive records) */
  part?: number;
  parts?: number;
  /** frames: the first record of a generation that continues this one (at followsFrame) without a base */
  follows?: string;
  followsFrame?: number;
}

export interface SqliteLogRecord {
  name: string;
  meta: SqliteLogMeta;
  read(): Promise<Buffer>;
}

export interface RebuildOptions {
  /** the snapshot (the recovery point's copy of the database) */
  base: Buffer;
  baseMark: { generation?: string; lastFrame: number; takenAt?: string };
  records: SqliteLogRecord[];
  /** ISO time; records captured after it are not applied. Absent: apply everything. */
  targetTime?: string;
  out: string;
  signal?: AbortSignal;
}

export interface RebuildResult {
  generation?: string;
  /** the last frame applied in that generation */
  frame: number;
  /** records applied (fully or partly) */
  records: number;
  frames: number;
  /** the capture time of the last record applied (or the snapshot's): the state restored is at least this recent */
  reached?: string;
  bytes: number;
}

export function parseSqliteLogMeta(m: unknown, name: string): SqliteLogMeta {
  const o = m as Partial<SqliteLogMeta> | undefined;
  if (!o || (o.type !== 'frames' && o.type !== 'base') || typeof o.generation !== 'string' || typeof o.pageSize !== 'number' || typeof o.lastFrame !== 'number' || typeof o.capturedAt !== 'string') {
    throw new HoldfastError('BAD_ARGUMENT', `log record ${name} is not a SQLite WAL record (meta ${JSON.stringify(m)?.slice(0, 200)})`);
  }
  return o as SqliteLogMeta;
}

export async function rebuildSqlite(o: RebuildOptions): Promise<RebuildResult> {
  const target = o.targetTime === undefined ? undefined : Date.parse(o.targetTime);
  const fh = await open(o.out, 'wx');
  try {
    let size = 0;
    const writeBase = async (data: Buffer): Promise<void> => {
      await fh.truncate(0);
      await fh.write(data, 0, data.length, 0);
      size = data.length;
    };
    await writeBase(o.base);
    let generation = o.baseMark.generation;
    let frame = o.baseMark.lastFrame;
    let reached = o.baseMark.takenAt;
    let applied = 0;
    let frames = 0;
    const apply = async (r: SqliteLogRecord): Promise<void> => {
      const m = r.meta;
      if (m.lastFrame <= frame) return;
      if (m.firstFrame > frame + 1) {
        throw new HoldfastError('CONFLICT', `the SQLite log chain has a hole: generation ${m.generation} frames ${frame + 1}..${m.firstFrame - 1} are missing before record ${r.name}; the database can be restored up to ${reached ?? 'the snapshot'} only`, { reached });
      }
      const data = await r.read();
      const skip = frame + 1 - m.firstFrame;
      size = await applyFrames(fh, data.subarray(skip * (FRAME_HEADER_BYTES + m.pageSize)), m.pageSize, size);
      frames += m.lastFrame - frame;
      frame = m.lastFrame;
    };
    let parts: Buffer[] = [];
    for (const r of o.records) {
      o.signal?.throwIfAborted();
      const m = r.meta;
      if (target !== undefined && Date.parse(m.capturedAt) > target) break;
      if (m.type === 'base' && (m.parts ?? 1) > 1) {
        // Parts of one copy share its capture time: all of them are applied, or none.
        if (m.part === 0) parts = []; // a copy whose shipping was cut off was taken again
        if ((m.part ?? 0) !== parts.length) throw new HoldfastError('CONFLICT', `the SQLite log chain has a broken base copy: record ${r.name} is part ${(m.part ?? 0) + 1} of ${m.parts ?? 1}, after ${parts.length} part(s)`, { reached });
        parts.push(await r.read());
        if (parts.length < (m.parts ?? 1)) continue;
      }
      if (m.type === 'base') {
        // The chain of a generation starts with its base; a snapshot taken later is newer than it.
        const older = o.baseMark.takenAt !== undefined && m.capturedAt <= o.baseMark.takenAt;
        const data = parts.length > 0 ? Buffer.concat(parts) : undefined;
        parts = [];
        if (older) continue;
        await writeBase(data ?? (await r.read()));
        // The copy contains every record captured before it: none of them is replayed onto it
        // (replaying old page images and stopping short of the copy's own frame would mix times).
        generation = m.generation;
        frame = m.lastFrame;
      } else {
        // Captured before the snapshot began (the shipper takes both, one after the other): the
        // snapshot contains it. Replaying it could mix times, like a base above.
        if (o.baseMark.takenAt !== undefined && m.capturedAt < o.baseMark.takenAt) continue;
        if (m.generation !== generation && m.follows !== undefined && m.follows === (generation ?? 'none') && m.followsFrame === frame && m.firstFrame === 1) {
          // The WAL was reset after exactly this frame (or emptied after the copy): the new generation goes on from here.
          generation = m.generation;
          frame = 0;
        }
        if (m.generation !== generation) {
          // Frames of a generation whose start nobody copied: nothing to replay them onto.
          throw new HoldfastError('CONFLICT', `the SQLite log chain is broken: record ${r.name} starts WAL generation ${m.generation} without a snapshot of it; the database can be restored up to ${reached ?? 'the snapshot'} only`, { reached });
        }
        await apply(r);
      }
      applied++;
      reached = m.capturedAt;
    }
    await fh.sync();
    return { generation, frame, records: applied, frames, reached, bytes: size };
  } finally {
    await fh.close();
  }
}

async function applyFrames(fh: FileHandle, data: Buffer, pageSize: number, size: number): Promise<number> {
  for (const f of framesOf(data, pageSize)) {
    const at = (f.pgno - 1) * pageSize;
    await fh.write(f.page, 0, pageSize, at);
    size = Math.max(size, at + pageSize);
    if (f.commitPages !== 0) {
      // A commit frame gives the database's size after that transaction (it may have shrunk).
      size = f.commitPages * pageSize;
      await fh.truncate(size);
    }
  }
  return size;
}
