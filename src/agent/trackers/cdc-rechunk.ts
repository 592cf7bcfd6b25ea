/**
 * Re-chunks only the changed parts of a file cut with content-defined chunking. A CDC cut point
 * depends only on the bytes since the previous cut, so the parent's chunks are kept up to the
 * first one a change touches; from that chunk's start the data is read and cut afresh until a new
 * cut lands on a parent boundary followed by an untouched chunk, and from there the parent's
 * chunks are kept again. The result is exactly what cutting the whole file would give, for the
 * cost of reading the changed chunks and their neighbours.
 *
 * A full read starts a fresh cut at each data extent of a sparse file: `base` re-chunks one
 * extent.
 */
import type { FileHandle } from 'node:fs/promises';
import type { ChunkSink, NewChunk } from '../../core/chunk-io.js';
import type { CdcParams } from '../../core/chunker.js';
import { encodeChunk } from '../../core/codec.js';
import { digestOf } from '../../core/digest.js';
import { throwIfAborted } from '../../core/errors.js';
import type { ChunkRef } from '../../core/manifest.js';
import type { ByteRange } from '../nbd/nbd-client.js';
import { cdcNext } from '../../workers/cdc.js';

export interface RechunkContext {
  sink: ChunkSink;
  cdc: CdcParams;
  signal?: AbortSignal;
  counters: { readBytes: number };
}

/**
 * The chunks of [base, base + newSize) of the file, given the parent's chunks of the same stretch
 * (`oldSize` bytes) and the written ranges (file offsets).
 */
export async function rechunk(ctx: RechunkContext, fh: FileHandle, parent: ChunkRef[], oldSize: number, newSize: number, dirty: ByteRange[], base = 0): Promise<ChunkRef[]> {
  const starts: number[] = [];
  let off = 0;
  for (const [, len] of parent) {
    starts.push(off);
    off += len;
  }
  const index = new Map(starts.map((s, i) => [s, i]));
  const ranges = dirty.map((r) => ({ offset: r.offset - base, length: r.length })).filter((r) => r.length > 0).sort((a, b) => a.offset - b.offset);
  const limit = Math.min(oldSize, newSize);
  const clean = (i: number): boolean => {
    const start = starts[i] as number;
    const end = start + (parent[i] as ChunkRef)[1];
    if (end > limit) return false;
    // The parent's last chunk was cut by its end of file, not by its content.
    if (i === parent.length - 1 && newSize !== oldSize) return false;
    return !ranges.some((r) => r.offset < end && r.offset + r.length > start);
  };

  const out: ChunkRef[] = [];
  const fresh: Array<{ digest: string; piece: Buffer }> = [];
  const flush = async (): Promise<void> => {
    if (fresh.length === 0) return;
    const batch = fresh.splice(0);
    const wanted = await ctx.sink.want(batch.map((f) => f.digest));
    const put: NewChunk[] = [];
    batch.forEach((f, i) => {
      if (wanted[i]) put.push({ digest: f.digest, length: f.piece.length, encoded: encodeChunk(f.piece, ctx.sink.compressionLevel) });
    });
    if (put.length > 0) await ctx.sink.put(put);
  };

  let buf = Buffer.alloc(0);
  let bufStart = 0;
  const fill = async (pos: number): Promise<void> => {
    // Keep [pos, ...) and read until `max` bytes are there or the file ends.
    if (pos > bufStart) {
      buf = buf.subarray(pos - bufStart);
      bufStart = pos;
    }
    if (pos < bufStart || pos > bufStart + buf.length) {
      buf = Buffer.alloc(0);
      bufStart = pos;
    }
    while (bufStart + buf.length < newSize && buf.length < ctx.cdc.max) {
      // Only what the next cut needs: a resync may make the rest unnecessary.
      const want = Math.min(ctx.cdc.max - buf.length, newSize - bufStart - buf.length);
      const more = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(more, 0, want, base + bufStart + buf.length);
      if (bytesRead === 0) throw new Error(`file ended at ${bufStart + buf.length}, expected ${newSize} bytes`);
      ctx.counters.readBytes += bytesRead;
      buf = Buffer.concat([buf, more.subarray(0, bytesRead)]);
    }
  };

  let pos = 0;
  while (pos < newSize) {
    throwIfAborted(ctx.signal);
    const i = index.get(pos);
    if (i !== undefined && clean(i)) {
      out.push(parent[i] as ChunkRef);
      pos += (parent[i] as ChunkRef)[1];
      continue;
    }
    await fill(pos);
    const avail = buf.length;
    const len = cdcNext(buf, 0, avail, ctx.cdc, bufStart + avail >= newSize);
    const piece = Buffer.from(buf.subarray(0, len));
    const digest = digestOf(piece);
    out.push([digest, len]);
    fresh.push({ digest, piece });
    if (fresh.length >= 16) await flush();
    pos += len;
  }
  await flush();
  return out;
}
