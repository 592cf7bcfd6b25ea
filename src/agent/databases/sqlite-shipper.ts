/**
 * Ships one SQLite database's WAL as log records: every poll copies the transactions committed
 * since the last shipped frame (holding a read transaction only while it copies, so the WAL
 * cannot be reset under the copy and the application's checkpoints wait at most that long) and
 * hands them to `ship`, which resolves once the record is durable on the server. Only then does
 * the position move on and get saved; a crash re-ships from the last durable record.
 *
 * When the WAL starts a generation whose start the shipper did not see (the application's
 * checkpoint reset the WAL, or the WAL was deleted, between two polls; or no saved position
 * leads into the current WAL), the frames before the reset are gone: the shipper ships a 'base'
 * record — a consistent copy of the database — and continues with that generation's frames.
 *
 * Polls and snapshots run one at a time (a sync's snapshot must contain every frame shipped
 * before it: see takeSnapshot).
 */
import Database from 'better-sqlite3';
import type { SqliteLogMeta } from './sqlite-rebuild.js';
import { takeSnapshot, type SqliteSnapshot } from './sqlite-snapshot.js';
import { readWal, readWalTail, type FrameRange, type WalPosition } from './sqlite-wal.js';
import { TrackerState } from '../trackers/tracker-state.js';

const BASE_PART_BYTES = 32 * 1024 * 1024;
const RECORD_BYTES = 16 * 1024 * 1024;

export interface ShipRecord {
  name: string;
  meta: SqliteLogMeta;
  data: Buffer;
}

export interface SqliteShipperOptions {
  source: string;
  /** the database file */
  path: string;
  /** where the shipper's position is saved */
  stateDir: string;
  /** resolves once the record is durable on the server */
  ship(r: ShipRecord): Promise<void>;
  /** most bytes of frames in one record */
  maxRecordBytes?: number;
  /** most bytes of a base copy in one record (default 32 MiB: the server takes bodies up to 40 MiB) */
  maxBaseRecordBytes?: number;
}

interface SavedState {
  position?: WalPosition;
  /** the generation the log chain has a start for (a base or the shipped frames from its frame 1); 'none': a copy taken without a WAL */
  based?: string;
  /** `based` continues this generation's state (at this frame) without a copy: its first record says so */
  follows?: { generation: string; frame: number };
}

export interface PollResult {
  records: number;
  frames: number;
  bytes: number;
  base: boolean;
}

export class SqliteShipper {
  private db: Database.Database | undefined;
  private readonly state: TrackerState;
  private saved: SavedState | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: SqliteShipperOptions) {
    this.state = new TrackerState(o.stateDir, o.source, 'sqlite-shipper');
  }

  /** The last durable position (for tests and status). */
  get position(): WalPosition | undefined {
    return this.saved?.position;
  }

  /** Ships what was committed since the last poll. */
  poll(): Promise<PollResult> {
    return this.serial(() => this.pollNow());
  }

  /** A consistent copy for a recovery point, containing every frame shipped so far. */
  snapshot(): Promise<SqliteSnapshot> {
    return this.serial(async () => {
      await this.pollNow();
      const snap = takeSnapshot(this.conn(), this.o.path, this.saved?.position);
      // The WAL moved to a generation the chain has not started yet: this copy starts it.
      if ((snap.mark.generation ?? 'none') !== this.saved?.based) await this.shipBase(snap);
      return snap;
    });
  }

  close(): Promise<void> {
    return this.serial(() => {
      this.db?.close();
      this.db = undefined;
      return Promise.resolve();
    });
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(f, f);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private conn(): Database.Database {
    // Read-only: it never checkpoints, so closing it never deletes the application's WAL.
    this.db ??= new Database(this.o.path, { readonly: true, fileMustExist: true });
    return this.db;
  }

  private async pollNow(): Promise<PollResult> {
    this.saved ??= (await this.state.load<SavedState>()) ?? {};
    const out: PollResult = { records: 0, frames: 0, bytes: 0, base: false };
    const walPath = `${this.o.path}-wal`;
    // Bounded: a busy database must not keep the queue (and a sync's snapshot) waiting forever.
    for (let round = 0; round < 16; round++) {
      const db = this.conn();
      db.exec('BEGIN');
      let read;
      let tail: ReturnType<typeof readWalTail> | undefined;
      const pos = this.saved.position;
      try {
        db.prepare('SELECT count(*) FROM sqlite_schema').get();
        read = readWal(walPath, { after: pos, maxBytes: this.o.maxRecordBytes ?? RECORD_BYTES });
        const h = read.header;
        if (read.newGeneration && h && pos && this.saved.based === pos.generation && h.salt1 === ((pos.salt1 + 1) >>> 0)) {
          // The WAL was reset once since the last poll: the old generation's frames past those the
          // new one has written are still in the file. When its chain ends there, inside the file
          // and past the frame a writer may be writing now, nothing of it is lost.
          const t = readWalTail(walPath, pos, h.pageSize, h.bigEndian);
          const now = readWal(walPath);
          if (t.nextPresent && now.generation === read.generation && t.end > (now.validFrames ?? 0) + 1) tail = t;
        }
      } finally {
        db.exec('ROLLBACK');
      }
      // After the read: everything read was committed by now.
      const capturedAt = new Date().toISOString();
      const gen = read.generation ?? 'none';
      if (this.saved.based !== gen) {
        if (out.base) return out; // one copy per poll; the next poll catches up
        if (tail && pos) {
          if (tail.range) await this.shipFrames(tail.range, capturedAt);
          await this.follow(gen, { generation: pos.generation, frame: tail.range?.lastFrame ?? pos.frame });
          continue;
        }
        // The WAL emptied (a TRUNCATE checkpoint) and a copy was taken then; the generation after
        // it (salt-1 counts resets) starts from that copy when it is the very next one.
        if (this.saved.based === 'none' && read.header && pos && pos.generation !== 'none' && read.header.salt1 === ((pos.salt1 + 1) >>> 0)) {
          await this.follow(gen, { generation: 'none', frame: 0 });
          continue;
        }
        // A generation we have no start for: a copy of the database starts it in the chain.
        // No WAL any more (the last connection closed, or a TRUNCATE checkpoint): the file holds
        // every commit, including any the last poll missed; a copy of it ends the generation.
        await this.shipBase();
        out.base = true;
        out.records++;
        // Read the generation again from the copy's mark: those frames are captured after the copy.
        continue;
      }
      if (!read.range) return out;
      await this.shipFrames(read.range, capturedAt);
      out.records++;
      out.frames += read.range.lastFrame - read.range.firstFrame + 1;
      out.bytes += read.range.data.length;
      // More than one record's worth was waiting: go on draining; otherwise this poll is done.
      if (read.range.data.length < (this.o.maxRecordBytes ?? RECORD_BYTES)) return out;
    }
    return out;
  }

  private async shipBase(copy?: SqliteSnapshot): Promise<void> {
    const snap = copy ?? takeSnapshot(this.conn(), this.o.path);
    const m = snap.mark;
    const generation = m.generation ?? 'none';
    // A large copy goes in parts (one request body each); the rebuild uses it once it has them all.
    const partBytes = this.o.maxBaseRecordBytes ?? BASE_PART_BYTES;
    const parts = Math.max(1, Math.ceil(snap.data.length / partBytes));
    for (let i = 0; i < parts; i++) {
      const meta: SqliteLogMeta = { type: 'base', generation, salt1: m.salt1, salt2: m.salt2, pageSize: snap.pageSize, firstFrame: 0, lastFrame: m.lastFrame, capturedAt: snap.takenAt, part: i, parts };
      const suffix = parts === 1 ? '' : `-p${i + 1}of${parts}`;
      await this.o.ship({ name: `${generation}-base-${Date.parse(snap.takenAt)}${suffix}`, meta, data: snap.data.subarray(i * partBytes, (i + 1) * partBytes) });
    }
    const saved = this.saved ?? {};
    // A base at frame 0 of a generation: continue from its first frame (replaying what the copy holds).
    this.saved = { based: generation, position: m.generation ? { generation, salt1: m.salt1, salt2: m.salt2, frame: 0, cksum: [0, 0] } : saved.position };
    await this.state.save(this.saved);
  }

  /** Continues the chain in the next generation: its first record says what it follows. */
  private async follow(generation: string, follows: { generation: string; frame: number }): Promise<void> {
    const salt = (i: number): number => parseInt(generation.slice(i * 8, i * 8 + 8), 16);
    this.saved = { based: generation, position: { generation, salt1: salt(0), salt2: salt(1), frame: 0, cksum: [0, 0] }, follows };
    await this.state.save(this.saved);
  }

  private async shipFrames(r: FrameRange, capturedAt: string): Promise<void> {
    const follows = this.saved?.follows && this.saved.based === r.generation && r.firstFrame === 1 ? this.saved.follows : undefined;
    const meta: SqliteLogMeta = {
      type: 'frames',
      generation: r.generation,
      salt1: r.salt1,
      salt2: r.salt2,
      pageSize: r.pageSize,
      firstFrame: r.firstFrame,
      lastFrame: r.lastFrame,
      commitPages: r.commitPages,
      capturedAt,
      ...(follows ? { follows: follows.generation, followsFrame: follows.frame } : {}),
    };
    const pad = (n: number): string => String(n).padStart(10, '0');
    await this.o.ship({ name: `${r.generation}-${pad(r.firstFrame)}-${pad(r.lastFrame)}`, meta, data: r.data });
    this.saved = { based: r.generation, position: r.end };
    await this.state.save(this.saved);
  }
}
