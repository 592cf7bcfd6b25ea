/**
 * Reads one file (or image) and turns it into chunk references, sending the chunks the sink
 * lacks. Sparse holes are found with SEEK_DATA/SEEK_HOLE and never read; in images, all-zero
 * chunks become holes too. A file that changes while it is read is read again, and marked torn
 * if it never holds still.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { constants, type BigIntStats } from 'node:fs';
import type { ChunkSink, NewChunk } from '../core/chunk-io.js';
import type { CodecBatcher } from '../core/codec-batcher.js';
import type { CdcParams } from '../core/chunker.js';
import type { SplitRule } from '../core/codec.js';
import type { ChunkRef, Hole } from '../core/manifest.js';
import { throwIfAborted } from '../core/errors.js';
import { seekData, seekHole } from '../native/index.js';

const SEGMENT = 8 * 1024 * 1024;
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

/** Reads [start, end) in segments, overlapping the next read with hashing; returns bytes read. */
async function chunkExtent(
  ctx: ChunkingContext,
  fh: FileHandle,
  start: number,
  end: number,
  mode: 'cdc' | 'image',
  chunks: ChunkRef[],
  addHole: (off: number, len: number) => void,
): Promise<number> {
  const segLen = (off: number): number => Math.min(SEGMENT, end - off);
  const readSeg = async (off: number): Promise<Buffer> => {
    const buf = Buffer.allocUnsafeSlow(segLen(off));
    const got = await readFully(fh, buf, off);
    ctx.counters.readBytes += got;
    ctx.onRead?.(got);
    return got === buf.length ? buf : buf.subarray(0, got);
  };
  let off = start;
  let carry: Buffer | undefined;
  let chunkPos = start; // file offset of the next chunk
  let next: Promise<Buffer> | undefined = off < end ? readSeg(off) : undefined;
  while (next) {
    throwIfAborted(ctx.signal);
    let buf = await next;
    const short = buf.length < segLen(off);
    off += buf.length;
    next = off < end && !short ? readSeg(off) : undefined;
    const final = next === undefined;
    if (carry && carry.length > 0) buf = Buffer.concat([carry, buf]);
    const rule: SplitRule = mode === 'image' ? { kind: 'fixed', size: ctx.imageChunk } : buf.length <= ctx.cdc.min && final ? { kind: 'whole' } : { kind: 'cdc', params: ctx.cdc, final };
    const h = await ctx.batcher.hash({ buf, rule, detectZero: mode === 'image' });
    const data = h.buf;
    const wanted = await ctx.sink.want(h.digests.filter((_, i) => !h.zero[i]));
    let w = 0;
    let p = 0;
    const fresh: Array<Promise<NewChunk>> = [];
    h.lengths.forEach((len, i) => {
      const digest = h.digests[i] as string;
      if (h.zero[i]) addHole(chunkPos, len);
      else {
        chunks.push([digest, len]);
        if (wanted[w++]) {
          const piece = data.subarray(p, p + len);
          fresh.push(ctx.batcher.encode(piece).then((encoded) => ({ digest, length: len, encoded })));
        }
      }
      p += len;
      chunkPos += len;
    });
    carry = h.used < data.length ? Buffer.from(data.subarray(h.used)) : undefined;
    if (fresh.length > 0) await ctx.sink.put(await Promise.all(fresh));
  }
  return off - start;
}
