/**
 * Reads one file (or image) and turns it into chunk references, sending the chunks the sink
 * lacks. Sparse holes are found with SEEK_DATA/SEEK_HOLE and never read; in images, all-zero
 * chunks become holes too. A file that changes while it is read is read again, and marked torn
 * if it never holds still.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { constants, type BigIntStats } from 'node:fs';
import type { ChunkSink } from '../core/chunk-io.js';
import { storeWanted, type CodecBatcher, type HashedForTake } from '../workers/codec-batcher.js';
import { RECYCLED_SIZE } from '../workers/codec-pool.js';
import { bigBuffer } from '../workers/big-buffers.js';
import type { CdcParams } from '../core/chunker.js';
import type { SplitRule } from '../core/codec.js';
import type { ChunkRef, Hole } from '../core/manifest.js';
import { throwIfAborted } from '../core/errors.js';
import { seekData, seekHole } from '../native/index.js';
import type { StatLike } from './file-meta.js';

const SEGMENT = RECYCLED_SIZE;
const ATTEMPTS = 3;

export interface ChunkingContext {
  sink: ChunkSink;
  batcher: CodecBatcher;
  cdc: CdcParams;
  imageChunk: number;
  signal?: AbortSignal;
  counters: { readBytes: number };
  onRead?: (bytes: number) => void;
}

export interface ChunkedFile {
  chunks: ChunkRef[];
  holes: Hole[];
  size: number;
  torn: boolean;
  stat: BigIntStats;
}

function sameContentStat(a: BigIntStats, b: BigIntStats): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;
}

async function openForRead(path: string): Promise<FileHandle> {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW;
  try {
    return await open(path, flags | constants.O_NOATIME);
  } catch {
    return await open(path, flags); // O_NOATIME needs ownership or CAP_FOWNER
  }
}

/** Data extents of a file, [offset, end); one extent unless the file has holes. */
function dataExtents(fd: number, st: BigIntStats): Array<[number, number]> {
  const size = Number(st.size);
  if (size === 0) return [];
  if (st.blocks * 512n >= st.size) return [[0, size]];
  return seekDataExtents(fd, size);
}

/** Data extents [start, end) of an open file of `size` bytes, found with SEEK_DATA/SEEK_HOLE. */
export function seekDataExtents(fd: number, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let pos = 0;
  while (pos < size) {
    const start = seekData(fd, pos);
    if (start < 0 || start >= size) break;
    let end = seekHole(fd, start);
    if (end < 0 || end > size) end = size;
    out.push([start, end]);
    pos = end;
  }
  return out;
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

export async function chunkFile(ctx: ChunkingContext, path: string, mode: 'cdc' | 'image'): Promise<ChunkedFile> {
  for (let attempt = 1; ; attempt++) {
    const fh = await openForRead(path);
    try {
      const before = await fh.stat({ bigint: true });
      const r = await chunkOpenFile(ctx, fh, before, mode);
      const after = await fh.stat({ bigint: true });
      if (sameContentStat(before, after) && r.size === Number(before.size)) return { ...r, torn: false, stat: after };
      if (attempt >= ATTEMPTS) return { ...r, torn: true, stat: after };
    } finally {
      await fh.close();
    }
  }
}

async function chunkOpenFile(ctx: ChunkingContext, fh: FileHandle, st: BigIntStats, mode: 'cdc' | 'image'): Promise<{ chunks: ChunkRef[]; holes: Hole[]; size: number }> {
  const chunks: ChunkRef[] = [];
  const holes: Hole[] = [];
  const addHole = (off: number, len: number): void => {
    const last = holes[holes.length - 1];
    if (last && last[0] + last[1] === off) last[1] += len;
    else holes.push([off, len]);
  };
  let pos = 0;
  let complete = true;
  for (const [start, end] of dataExtents(fh.fd, st)) {
    if (start > pos) addHole(pos, start - pos);
    pos = start + (await chunkExtent(ctx, fh, start, end, mode, chunks, addHole));
    if (pos < end) {
      complete = false; // file shrank: the caller's stat check catches it
      break;
    }
  }
  const size = Number(st.size);
  if (complete && pos < size) {
    addHole(pos, size - pos);
    pos = size;
  }
  return { chunks, holes, size: pos };
}

/** Files up to this size, without holes, are read whole by a worker. */
export const SMALL_FILE = 1024 * 1024;

/**
 * A small file read and hashed in a worker. Returns undefined when the file did not hold still
 * since the walk's stat: the caller then takes the careful path (chunkFile), which re-reads.
 */
export async function chunkSmallFile(ctx: ChunkingContext, path: string, st: StatLike): Promise<{ chunks: ChunkRef[] } | undefined> {
  const size = Number(st.size);
  if (size === 0) return { chunks: [] };
  const rule: SplitRule = size <= ctx.cdc.min ? { kind: 'whole' } : { kind: 'cdc', params: ctx.cdc, final: true };
  const r = await ctx.batcher.readHash({ path, rule, expect: { size, mtimeNs: st.mtimeNs.toString(), ctimeNs: st.ctimeNs.toString(), ino: st.ino.toString() } });
  if (!r.ok) throw Object.assign(new Error(`${r.message}`), { code: r.code });
  if (!r.same) {
    await r.take([]);
    return undefined;
  }
  ctx.counters.readBytes += size;
  ctx.onRead?.(size);
  const chunks: ChunkRef[] = [];
  const pieces: Array<[number, number]> = [];
  let p = 0;
  r.piece.lengths.forEach((len, i) => {
    chunks.push([r.piece.digests[i] as string, len]);
    pieces.push([p, len]);
    p += len;
  });
  await storeWanted(ctx.sink, r.take, pieces, r.piece.digests, r.piece.lengths);
  return { chunks };
}

/**
 * Reads [start, end) in segments. Reads run one segment ahead; image segments are hashed up to
 * three at a time (fixed-size chunks need no carry between segments); the dedup question and
 * compression of each segment run in the background while the next is hashed.
 */
async function chunkExtent(
  ctx: ChunkingContext,
  fh: FileHandle,
  start: number,
  end: number,
  mode: 'cdc' | 'image',
  chunks: ChunkRef[],
  addHole: (off: number, len: number) => void,
): Promise<number> {
  if (mode === 'image') return chunkImageExtent(ctx, fh, start, end, chunks, addHole);
  const segLen = (off: number): number => Math.min(SEGMENT, end - off);
  const readSeg = async (off: number): Promise<Buffer> => {
    const buf = ctx.batcher.codec.buffer(segLen(off));
    const got = await readFully(fh, buf, off);
    ctx.counters.readBytes += got;
    ctx.onRead?.(got);
    return got === buf.length ? buf : buf.subarray(0, got);
  };
  const depth = 1;
  const hashing: Array<{ h: Promise<HashedForTake>; length: number; tail?: Buffer }> = [];
  const placer = new ExtentPlacer(ctx.sink, start, chunks, addHole, 6);
  let carry: Buffer | undefined;

  const settle = async (q: { h: Promise<HashedForTake>; length: number; tail?: Buffer }): Promise<void> => {
    const h = await q.h;
    const rest = q.length - h.used;
    carry = rest > 0 && q.tail ? Buffer.from(q.tail.subarray(q.tail.length - rest)) : undefined;
    await placer.place(h);
  };

  let off = start;
  let next: Promise<Buffer> | undefined = off < end ? readSeg(off) : undefined;
  while (next) {
    throwIfAborted(ctx.signal);
    let buf = await next;
    const short = buf.length < segLen(off);
    off += buf.length;
    next = off < end && !short ? readSeg(off) : undefined;
    const final = next === undefined;
    if (carry && carry.length > 0) {
      // Joined in a kept buffer, and the segment's buffer goes back: a fresh 4 MiB per segment
      // (Buffer.concat), never reused, made a 2 GiB file cost 1.4 million page faults.
      const joined = bigBuffer(carry.length + buf.length);
      carry.copy(joined, 0);
      buf.copy(joined, carry.length);
      ctx.batcher.codec.giveBack(buf);
      buf = joined;
    }
    carry = undefined;
    const rule: SplitRule = buf.length <= ctx.cdc.min && final ? { kind: 'whole' } : { kind: 'cdc', params: ctx.cdc, final };
    // The buffer moves to a worker; keep the tail that may carry into the next segment.
    const tail = !final ? Buffer.from(buf.subarray(Math.max(0, buf.length - ctx.cdc.max))) : undefined;
    const length = buf.length; // read before hash(): the buffer is transferred to a worker
    hashing.push({ h: ctx.batcher.hash({ buf, rule, detectZero: false }), length, tail });
    if (hashing.length >= depth) await settle(hashing.shift() as (typeof hashing)[number]);
  }
  while (hashing.length > 0) await settle(hashing.shift() as (typeof hashing)[number]);
  await placer.drain();
  return off - start;
}

/**
 * An image extent: fixed-size chunks need no carry between segments, so each segment is read,
 * hashed and held by a worker on its own (the main thread only sees digests), up to four at a
 * time. A short read (the file shrank) ends the extent; segments already asked for beyond it
 * are dropped.
 */
async function chunkImageExtent(
  ctx: ChunkingContext,
  fh: FileHandle,
  start: number,
  end: number,
  chunks: ChunkRef[],
  addHole: (off: number, len: number) => void,
): Promise<number> {
  // Four segments hashing and four being compressed keep two workers busy; each holds 4 MiB.
  const depth = 4;
  const rule: SplitRule = { kind: 'fixed', size: ctx.imageChunk };
  const hashing: Array<{ h: Promise<HashedForTake>; length: number }> = [];
  const placer = new ExtentPlacer(ctx.sink, start, chunks, addHole, depth);
  let short = false;

  const settle = async (q: { h: Promise<HashedForTake>; length: number }): Promise<void> => {
    const h = await q.h;
    if (short) {
      await h.take([]);
      return;
    }
    ctx.counters.readBytes += h.used;
    ctx.onRead?.(h.used);
    if (h.used < q.length) short = true;
    await placer.place(h);
  };

  try {
    for (let off = start; off < end && !short; off += SEGMENT) {
      throwIfAborted(ctx.signal);
      const length = Math.min(SEGMENT, end - off);
      const h = ctx.batcher.readRange({ fd: fh.fd, offset: off, length, rule, detectZero: true });
      h.catch(() => undefined); // observed when settled
      hashing.push({ h, length });
      if (hashing.length >= depth) await settle(hashing.shift() as (typeof hashing)[number]);
    }
    while (hashing.length > 0) await settle(hashing.shift() as (typeof hashing)[number]);
  } finally {
    // The file closes after this returns: no worker may still be reading from its descriptor.
    for (const q of hashing.splice(0)) await q.h.then((h) => h.take([]), () => undefined);
  }
  await placer.drain();
  return placer.pos - start;
}

/**
 * Hashed segments of one extent, placed in file order: all-zero chunks become holes, the others
 * chunk references, and the chunks the sink lacks are stored while the next segments are
 * hashed, at most `limit` segments' worth at once.
 */
class ExtentPlacer {
  private readonly storing = new Set<Promise<void>>();

  constructor(
    private readonly sink: ChunkSink,
    /** file offset of the next chunk */
    public pos: number,
    private readonly chunks: ChunkRef[],
    private readonly addHole: (off: number, len: number) => void,
    private readonly limit: number,
  ) {}

  async place(h: HashedForTake): Promise<void> {
    const pieces: Array<[number, number]> = [];
    const digests: string[] = [];
    const lengths: number[] = [];
    let p = 0;
    h.lengths.forEach((len, i) => {
      if (h.zero[i]) this.addHole(this.pos, len);
      else {
        const digest = h.digests[i] as string;
        this.chunks.push([digest, len]);
        pieces.push([p, len]);
        digests.push(digest);
        lengths.push(len);
      }
      p += len;
      this.pos += len;
    });
    const task = storeWanted(this.sink, h.take, pieces, digests, lengths);
    task.catch(() => undefined); // observed in drain()
    this.storing.add(task);
    void task.finally(() => this.storing.delete(task)).catch(() => undefined);
    while (this.storing.size >= this.limit) await Promise.race(this.storing);
  }

  async drain(): Promise<void> {
    await Promise.all(this.storing);
  }
}
