/**
 * Reads a SQLite write-ahead log: the 32-byte header, then frames of a 24-byte frame header and
 * one page each. A frame is valid when its salts equal the header's and its checksum — chained
 * from the previous frame's (the header's for the first) over the frame header's first 8 bytes
 * and the page — matches. A frame whose "database size" field is not 0 ends a transaction
 * (a commit frame). Whatever follows the first invalid frame is garbage from an earlier use of
 * the file, and frames after the last commit frame belong to a transaction still being written.
 *
 * A WAL reset (the next writer after a complete checkpoint starts again at frame 1) writes a
 * new header with new salts: that starts a new generation. The reader continues from a
 * position (the last committed frame it handed out and its checksum) while the salts and that
 * frame are unchanged; otherwise it reads the new generation from frame 1.
 *
 * Synchronous on purpose: the shipper reads inside a held read transaction (better-sqlite3 is
 * synchronous), which keeps the WAL from being reset while it copies.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export const WAL_HEADER_BYTES = 32;
export const FRAME_HEADER_BYTES = 24;
const MAGIC_LE = 0x377f0682;
const MAGIC_BE = 0x377f0683;
const FORMAT_VERSION = 3007000;

export interface WalHeader {
  bigEndian: boolean;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  cksum: [number, number];
}

/** Where a reader stands: the last committed frame it handed out (0: none yet) and its checksum. */
export interface WalPosition {
  generation: string;
  salt1: number;
  salt2: number;
  frame: number;
  cksum: [number, number];
}

/** A run of whole committed transactions: the raw frames, exactly as in the WAL. */
export interface FrameRange {
  generation: string;
  salt1: number;
  salt2: number;
  pageSize: number;
  firstFrame: number;
  lastFrame: number;
  /** database size in pages after the range's last commit */
  commitPages: number;
  /** the raw frames (frame header + page each) */
  data: Buffer;
  /** the position after the range */
  end: WalPosition;
}

export interface WalRead {
  /** undefined: no WAL file, or it holds no valid header (nothing written since the last reset) */
  header?: WalHeader;
  generation?: string;
  /** the header's generation is not the one of the position asked to continue from */
  newGeneration: boolean;
  /** the last valid frame (committed or not) the read reached; a writer may be writing the next */
  validFrames?: number;
  /** the committed frames after the position (none when nothing new was committed) */
  range?: FrameRange;
}

export const generationOf = (salt1: number, salt2: number): string => salt1.toString(16).padStart(8, '0') + salt2.toString(16).padStart(8, '0');

/** SQLite's WAL checksum: two running 32-bit sums over pairs of 32-bit words. */
export function walChecksum(buf: Buffer, start: number, end: number, seed: readonly [number, number], bigEndian: boolean): [number, number] {
  let s0 = seed[0];
  let s1 = seed[1];
  for (let i = start; i < end; i += 8) {
    const a = bigEndian ? buf.readUInt32BE(i) : buf.readUInt32LE(i);
    const b = bigEndian ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4);
    s0 = (s0 + a + s1) >>> 0;
    s1 = (s1 + b + s0) >>> 0;
  }
  return [s0, s1];
}

export function parseWalHeader(b: Buffer): WalHeader | undefined {
  if (b.length < WAL_HEADER_BYTES) return undefined;
  const magic = b.readUInt32BE(0);
  if (magic !== MAGIC_LE && magic !== MAGIC_BE) return undefined;
  if (b.readUInt32BE(4) !== FORMAT_VERSION) return undefined;
  const bigEndian = magic === MAGIC_BE;
  const cksum = walChecksum(b, 0, 24, [0, 0], bigEndian);
  if (cksum[0] !== b.readUInt32BE(24) || cksum[1] !== b.readUInt32BE(28)) return undefined;
  const pageSize = b.readUInt32BE(8);
  // 512..65536, a power of two (65536 is stored as 1 in the database header, but as itself here)
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return undefined;
  return { bigEndian, pageSize, checkpointSeq: b.readUInt32BE(12), salt1: b.readUInt32BE(16), salt2: b.readUInt32BE(20), cksum };
}

function readAt(fd: number, len: number, pos: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, b, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got === len ? b : b.subarray(0, got);
}

export interface ReadWalOptions {
  /** continue after this position when it still holds (same salts, same checksum at its frame) */
  after?: WalPosition;
  /** stop after the first commit frame past this many bytes of frames (bounds one log record) */
  maxBytes?: number;
}

/** Reads the committed frames after `o.after` (or from frame 1 of a new generation). */
export function readWal(walPath: string, o: ReadWalOptions = {}): WalRead {
  let fd: number;
  try {
    fd = openSync(walPath, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { newGeneration: o.after !== undefined };
    throw err;
  }
  try {
    const header = parseWalHeader(readAt(fd, WAL_HEADER_BYTES, 0));
    if (!header) return { newGeneration: o.after !== undefined };
    const generation = generationOf(header.salt1, header.salt2);
    const frameBytes = FRAME_HEADER_BYTES + header.pageSize;
    const offsetOf = (frame: number): number => WAL_HEADER_BYTES + (frame - 1) * frameBytes;
    let from: WalPosition = { generation, salt1: header.salt1, salt2: header.salt2, frame: 0, cksum: header.cksum };
    let newGeneration = o.after !== undefined;
    const a = o.after;
    if (a && a.generation === generation) {
      // The frame we stopped at must still carry the checksum we saw (the file was not replaced).
      const fh = a.frame === 0 ? undefined : readAt(fd, FRAME_HEADER_BYTES, offsetOf(a.frame));
      if (a.frame === 0) newGeneration = false; // frame 1 chains from the header's checksum (already in `from`)
      else if (fh && fh.length === FRAME_HEADER_BYTES && fh.readUInt32BE(16) === a.cksum[0] && fh.readUInt32BE(20) === a.cksum[1]) {
        from = a;
        newGeneration = false;
      }
    }
    const max = o.maxBytes ?? 16 * 1024 * 1024;
    const parts: Buffer[] = [];
    let pending: Buffer[] = []; // frames of the transaction not yet seen committed
    let cksum = from.cksum;
    let frame = from.frame;
    let committed: { frame: number; cksum: [number, number]; pages: number } | undefined;
    let bytes = 0;
    const batchFrames = Math.max(1, Math.floor((4 * 1024 * 1024) / frameBytes));
    scan: for (;;) {
      const batch = readAt(fd, batchFrames * frameBytes, offsetOf(frame + 1));
      const whole = Math.floor(batch.length / frameBytes);
      for (let i = 0; i < whole; i++) {
        const f = batch.subarray(i * frameBytes, (i + 1) * frameBytes);
        if (f.readUInt32BE(8) !== header.salt1 || f.readUInt32BE(12) !== header.salt2 || f.readUInt32BE(0) === 0) break scan;
        let c = walChecksum(f, 0, 8, cksum, header.bigEndian);
        c = walChecksum(f, FRAME_HEADER_BYTES, frameBytes, c, header.bigEndian);
        if (c[0] !== f.readUInt32BE(16) || c[1] !== f.readUInt32BE(20)) break scan;
        cksum = c;
        frame++;
        pending.push(f);
        const pages = f.readUInt32BE(4);
        if (pages !== 0) {
          parts.push(...pending);
          bytes += pending.length * frameBytes;
          pending = [];
          committed = { frame, cksum, pages };
          if (bytes >= max) break scan;
        }
      }
      if (whole < batchFrames) break;
    }
    if (!committed) return { header, generation, newGeneration, validFrames: frame };
    return {
      header,
      generation,
      newGeneration,
      validFrames: frame,
      range: {
        generation,
        salt1: header.salt1,
        salt2: header.salt2,
        pageSize: header.pageSize,
        firstFrame: from.frame + 1,
        lastFrame: committed.frame,
        commitPages: committed.pages,
        data: Buffer.concat(parts),
        end: { generation, salt1: header.salt1, salt2: header.salt2, frame: committed.frame, cksum: committed.cksum },
      },
    };
  } finally {
    closeSync(fd);
  }
}

/**
 * The rest of an older generation after `after`, read from a WAL that a reset has since started
 * over: its frames beyond those the new generation has written are still in the file. `end` is
 * the last valid frame found and `nextPresent` whether the frame after it is whole in the file
 * (then the chain ends there for a reason in the file, not because the file ends).
 */
export function readWalTail(walPath: string, after: WalPosition, pageSize: number, bigEndian: boolean): { range?: FrameRange; end: number; nextPresent: boolean } {
  const fd = openSync(walPath, 'r');
  try {
    const frameBytes = FRAME_HEADER_BYTES + pageSize;
    let cksum = after.cksum;
    let frame = after.frame;
    const parts: Buffer[] = [];
    let pending: Buffer[] = [];
    let committed: { frame: number; cksum: [number, number]; pages: number } | undefined;
    for (;;) {
      const f = readAt(fd, frameBytes, WAL_HEADER_BYTES + frame * frameBytes);
      if (f.length < frameBytes) return finish(false);
      if (f.readUInt32BE(8) !== after.salt1 || f.readUInt32BE(12) !== after.salt2 || f.readUInt32BE(0) === 0) return finish(true);
      let c = walChecksum(f, 0, 8, cksum, bigEndian);
      c = walChecksum(f, FRAME_HEADER_BYTES, frameBytes, c, bigEndian);
      if (c[0] !== f.readUInt32BE(16) || c[1] !== f.readUInt32BE(20)) return finish(true);
      cksum = c;
      frame++;
      pending.push(f);
      const pages = f.readUInt32BE(4);
      if (pages !== 0) {
        parts.push(...pending);
        pending = [];
        committed = { frame, cksum, pages };
      }
    }
    function finish(nextPresent: boolean): { range?: FrameRange; end: number; nextPresent: boolean } {
      if (!committed) return { end: frame, nextPresent };
      const g = after.generation;
      return {
        end: frame,
        nextPresent,
        range: {
          generation: g,
          salt1: after.salt1,
          salt2: after.salt2,
          pageSize,
          firstFrame: after.frame + 1,
          lastFrame: committed.frame,
          commitPages: committed.pages,
          data: Buffer.concat(parts),
          end: { generation: g, salt1: after.salt1, salt2: after.salt2, frame: committed.frame, cksum: committed.cksum },
        },
      };
    }
  } finally {
    closeSync(fd);
  }
}

/** The frames of a range (or of a shipped record's bytes): page number, commit size, page. */
export function* framesOf(data: Buffer, pageSize: number): Generator<{ pgno: number; commitPages: number; page: Buffer }> {
  const frameBytes = FRAME_HEADER_BYTES + pageSize;
  if (data.length % frameBytes !== 0) throw new Error(`WAL frame data of ${data.length} bytes is not a whole number of ${frameBytes}-byte frames`);
  for (let off = 0; off < data.length; off += frameBytes) {
    yield { pgno: data.readUInt32BE(off), commitPages: data.readUInt32BE(off + 4), page: data.subarray(off + FRAME_HEADER_BYTES, off + frameBytes) };
  }
}
