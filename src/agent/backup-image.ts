/**
 * Backs up an image file (a raw or qcow2 disk file, read as bytes) with fixed-size chunks, so a
 * changed block maps to one known chunk; all-zero chunks are recorded as holes.
 */
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { ChunkSink } from '../core/chunk-io.js';
import type { CodecBatcher } from '../workers/codec-batcher.js';
import type { CdcParams } from '../core/chunker.js';
import { ManifestWriter, PAGE_CHUNKS, type PageCache } from '../core/manifest-io.js';
import type { ChunkRef, FileEntry } from '../core/manifest.js';
import { HoldfastError, errnoCode } from '../core/errors.js';
import { baseMeta, readXattrs } from './file-meta.js';
import { chunkFile } from './file-chunker.js';
import { unchanged, type BackupOutcome, type BackupProgress } from './backup-dir.js';

export interface ImageBackupOptions {
  path: string;
  sink: ChunkSink;
  batcher: CodecBatcher;
  cdc: CdcParams;
  imageChunk: number;
  /** the parent point's entry, without chunks (`firstEntryHead`): enough to see that nothing changed */
  parentHead?: FileEntry;
  /** the parent point's manifest, whose only entry is `parentHead`: reused whole if nothing changed */
  parentManifest?: ChunkRef[];
  /** the source's pages of its last manifest (paged chunk lists) */
  pages?: PageCache;
  signal?: AbortSignal;
  onProgress?: (p: BackupProgress) => void;
}

export async function backupImage(o: ImageBackupOptions): Promise<BackupOutcome> {
  const path = resolve(o.path);
  let st;
  try {
    st = await stat(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new HoldfastError('PATH_NOT_FOUND', `image ${path} does not exist`, { path });
    throw new HoldfastError('PATH_UNREADABLE', `cannot read image ${path}: ${(err as Error).message}`, { path });
  }
  if (!st.isFile()) throw new HoldfastError('BAD_ARGUMENT', `image ${path} is not a regular file (use --kind dir for a directory)`, { path });
  const counters = { readBytes: 0 };
  const progress: BackupProgress = { entries: 0, bytesDone: 0, readBytes: 0 };
  const name = basename(path);
  const meta = { path: name, ...baseMeta(st), xattrs: readXattrs(path) };
  if (meta.xattrs === undefined) delete meta.xattrs;
  const torn: string[] = [];
  const seen = o.parentHead?.path === name ? o.parentHead : undefined;
  // Same entry as the parent's only one: its manifest is this point's (a 2 GiB image's holds
  // 131,072 chunk references, 9.5 MiB to encode, cut and hash again for nothing). A change of
  // mode or owner moves ctime, so anything else is read (and deduplicated) again.
  if (o.parentManifest && unchanged(seen, st.size, st.mtimeNs, st.ctimeNs, st.ino) && sameEntry(seen, { ...seen, ...meta, type: 'file' })) {
    return { manifest: o.parentManifest, entries: 1, logicalBytes: seen.size, readBytes: 0, torn: [], warnings: [] };
  }
  let r;
  try {
    r = await chunkFile(
      { sink: o.sink, batcher: o.batcher, cdc: o.cdc, imageChunk: o.imageChunk, signal: o.signal, counters, onRead: (n) => {
        progress.readBytes += n;
        progress.bytesDone += n;
        o.onProgress?.(progress);
      } },
      path,
      'image',
    );
  } catch (err) {
    if (errnoCode(err) === 'EACCES' || errnoCode(err) === 'EPERM') throw new HoldfastError('PATH_UNREADABLE', `cannot read image ${path}: ${(err as Error).message}`, { path });
    throw err;
  }
  if (r.torn) torn.push(name);
  const entry: FileEntry = { type: 'file', ...meta, ...baseMeta(r.stat), size: r.size, ino: Number(r.stat.ino), chunks: r.chunks };
  if (r.holes.length > 0) entry.holes = r.holes;
  if (r.torn) entry.torn = true;
  const manifest = new ManifestWriter(o.sink, 'image', { pageSpan: PAGE_CHUNKS * o.imageChunk, pages: o.pages });
  await manifest.add(entry);
  const refs = await manifest.finish();
  return { manifest: refs, entries: 1, logicalBytes: entry.size, readBytes: counters.readBytes, torn, warnings: [] };
}

/** Every field equal (the chunk list is the parent's own array). */
function sameEntry(a: FileEntry, b: FileEntry): boolean {
  const keys = Object.keys(b) as Array<keyof FileEntry>;
  if (keys.length !== Object.keys(a).length) return false;
  return keys.every((k) => a[k] === b[k] || JSON.stringify(a[k]) === JSON.stringify(b[k]));
}
