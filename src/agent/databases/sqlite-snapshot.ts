/**
 * A consistent copy of a live SQLite database: every page, read through SQLite inside one read
 * transaction (sqlite3_serialize), so the copy is the database as of one committed transaction
 * while writers go on (WAL readers never block writers).
 *
 * The copy is tagged with a mark: the WAL generation it belongs to and a frame it contains at
 * least (`lastFrame`; frames after it are replayed on top at restore). Replaying frames the copy
 * already contains is harmless — a frame is a whole page image, so the last image of each page
 * wins — which is why a lower bound is enough. The bound comes from the WAL index (-shm): a
 * frame the index counted before the read transaction began is visible to it. The WAL file
 * alone cannot tell: a writer appends its commit frame a moment before it updates the index.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import type Database from 'better-sqlite3';
import { HoldfastError } from '../../core/errors.js';
import { generationOf, parseWalHeader, WAL_HEADER_BYTES, type WalPosition } from './sqlite-wal.js';

export interface SnapshotMark {
  /** undefined: there was no WAL (the copy is the database file, everything checkpointed) */
  generation?: string;
  salt1: number;
  salt2: number;
  /** the copy contains frames 1..lastFrame of the generation (at least) */
  lastFrame: number;
}

export interface SqliteSnapshot {
  data: Buffer;
  mark: SnapshotMark;
  pageSize: number;
  /** ISO time the read transaction began: every change in the copy was committed by then */
  takenAt: string;
}

function readPrefix(path: string, len: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const b = Buffer.alloc(len);
    const n = readSync(fd, b, 0, len, 0);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** The WAL index header's mxFrame and salts (two copies must agree: a writer may be mid-update). */
export function readWalIndex(shmPath: string): { mxFrame: number; generation: string } | undefined {
  for (let attempt = 0; attempt < 20; attempt++) {
    const b = readPrefix(shmPath, 96);
    if (!b || b.length < 96) return undefined;
    if (!b.subarray(0, 48).equals(b.subarray(48, 96))) continue;
    if (b[12] !== 1) return undefined; // not initialised
    const mxFrame = endianness() === 'LE' ? b.readUInt32LE(16) : b.readUInt32BE(16);
    // aSalt holds the WAL header's salt bytes as they are on disk.
    return { mxFrame, generation: generationOf(b.readUInt32BE(32), b.readUInt32BE(36)) };
  }
  return undefined;
}

export function pageSizeOf(dbHeader: Buffer): number {
  const v = dbHeader.readUInt16BE(16);
  return v === 1 ? 65536 : v;
}

const pause = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/**
 * Copies the database through `db` (a connection to `dbPath` that is not in a transaction).
 * `atLeast`: a position the copy must contain (the shipper's last shipped frame), so that the
 * frames after it — shipped later — are exactly what restore replays on top.
 */
export function takeSnapshot(db: Database.Database, dbPath: string, atLeast?: WalPosition): SqliteSnapshot {
  const shmPath = `${dbPath}-shm`;
  let index = readWalIndex(shmPath);
  for (let i = 0; atLeast && index && index.generation === atLeast.generation && index.mxFrame < atLeast.frame && i < 200; i++) {
    pause(5); // the writer of that commit frame has yet to publish it in the index
    index = readWalIndex(shmPath);
  }
  if (db.inTransaction) throw new Error('takeSnapshot needs a connection outside any transaction');
  db.exec('BEGIN');
  try {
    db.prepare('SELECT count(*) FROM sqlite_schema').get(); // the read transaction starts here
    const takenAt = new Date().toISOString();
    const header = parseWalHeader(readPrefix(`${dbPath}-wal`, WAL_HEADER_BYTES) ?? Buffer.alloc(0));
    const data = db.serialize();
    if (data.length < 100) throw new HoldfastError('SOURCE_UNREADABLE', `${dbPath} is not a SQLite database (serialized to ${data.length} bytes)`, { path: dbPath });
    let mark: SnapshotMark = { salt1: 0, salt2: 0, lastFrame: 0 };
    if (header) {
      const generation = generationOf(header.salt1, header.salt2);
      const covered = atLeast && atLeast.generation === generation && index?.generation === generation && index.mxFrame >= atLeast.frame;
      mark = { generation, salt1: header.salt1, salt2: header.salt2, lastFrame: covered ? atLeast.frame : 0 };
    }
    return { data, mark, pageSize: pageSizeOf(data), takenAt };
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
  }
}
