/**
 * Disk images kept as files in a btrfs subvolume (raw VM disks, .img, .qcow2, …) are cut like an
 * image source: fixed chunks on the image grid (16 KiB), all-zero chunks as holes. A written range
 * then maps straight to the slots it touches: a scattered 4 KiB write costs one 16 KiB chunk
 * (content-defined chunks average 256 KiB, and re-cutting reads a chunk or two around each write),
 * and holes filled or punched move no chunk boundary, so a sparse image needs no full read.
 *
 * Only disk images, by name: fixed 16 KiB chunks cost 16 times the chunk references of the
 * content-defined average (manifest bytes per point, index entries, about 70 bytes of index
 * memory per chunk: 0.4% of the data), which pays off only for files rewritten in place in
 * small blocks.
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ChunkSink } from '../../core/chunk-io.js';
import type { ChunkRef, FileEntry, Hole } from '../../core/manifest.js';
import type { CodecBatcher } from '../../workers/codec-batcher.js';
import { SMALL_FILE, seekDataExtents } from '../file-chunker.js';
import type { ByteRange } from '../nbd/nbd-client.js';
import { ImageSlots, readSlots } from './image-slots.js';

const IMAGE_NAME = /\.(img|raw|qcow2|qed|vmdk|vdi|vhd|vhdx)$/i;

/** Whether a file of the subvolume is a disk image, cut into fixed image chunks. */
export function isDiskImageFile(path: string, size: number | bigint): boolean {
  return Number(size) > SMALL_FILE && IMAGE_NAME.test(basename(path));
}


export interface ImageFileContext {
  sink: ChunkSink;
  batcher: CodecBatcher;
  imageChunk: number;
  signal?: AbortSignal;
  counters: { readBytes: number };
}

/**
 * The chunks and holes of a disk image file of `size` bytes (in a read-only snapshot). With the
 * parent's entry on the same grid and size, only the slots `written` touches are read; otherwise
 * every slot holding data.
 */
export async function imageFileContent(ctx: ImageFileContext, path: string, size: number, prev?: FileEntry, written?: ByteRange[]): Promise<{ chunks: ChunkRef[]; holes: Hole[] }> {
  const fh = await open(path, 'r');
  try {
    const base = prev && written ? ImageSlots.fromEntry(prev, size, ctx.imageChunk) : undefined;
    const slots = base ?? ImageSlots.empty(size, ctx.imageChunk);
    const ranges = base && written ? written : seekDataExtents(fh.fd, size).map(([s, e]) => ({ offset: s, length: e - s }));
    const read = async (offset: number, length: number, _signal: AbortSignal | undefined, buf: Buffer): Promise<Buffer> => {
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      buf.fill(0, got); // zeros past a short read (cannot happen in a snapshot)
      return buf;
    };
    await readSlots({ read, sink: ctx.sink, batcher: ctx.batcher, signal: ctx.signal, counters: ctx.counters }, slots, slots.runsOf(ranges));
    return slots.content();
  } finally {
    await fh.close();
  }
}
