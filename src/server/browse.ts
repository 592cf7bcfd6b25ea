/**
 * Reading inside a recovery point for the console and the portal: one directory's entries, one
 * entry by path, and a file's content as a stream of verified chunks (holes as zeros). The
 * manifest is in walk order, so a directory's children follow it and the read stops after them.
 */
import { Readable } from 'node:stream';
import { HoldfastError } from '../core/errors.js';
import { ROOT_PATH, baseName, compareWalkOrder, isWithin, normalizeSubPath } from '../core/entry-path.js';
import { chunkOffsets, hasContent, type ChunkRef, type Entry, type FileEntry } from '../core/manifest.js';
import { readManifest } from '../core/manifest-io.js';
import type { ChunkSource } from '../core/chunk-io.js';
import type { PointRow } from '../pool/catalog.js';

export interface BrowseEntry {
  name: string;
  path: string;
  type: Entry['type'];
  size: number;
  mtimeNs: string;
  mode: number;
  uid: number;
  gid: number;
  target?: string;
}

const READ_BATCH_BYTES = 4 * 1024 * 1024;

export function toBrowseEntry(e: Entry): BrowseEntry {
  return {
    name: e.path === ROOT_PATH ? '' : baseName(e.path), path: e.path, type: e.type, size: hasContent(e) ? e.size : 0, mtimeNs: e.mtimeNs,
    mode: e.mode, uid: e.uid, gid: e.gid, ...(e.type === 'symlink' ? { target: e.target } : {}),
  };
}

/** A user-given path inside a point, in manifest form. */
export function pointPath(p: string): string {
  try {
    return normalizeSubPath(p);
  } catch {
    throw new HoldfastError('BAD_ARGUMENT', `path '${p}' is not a path inside the recovery point (no '..' components)`, { path: p });
  }
}

/** The entry at `path` and, when it is a directory, its children (name order). */
export async function listDirectory(source: ChunkSource, point: PointRow, dir: string, signal?: AbortSignal): Promise<{ dir: BrowseEntry; entries: BrowseEntry[] }> {
  const want = pointPath(dir);
  let self: Entry | undefined;
  const entries: BrowseEntry[] = [];
  for await (const e of readManifest(source, point.manifest, signal)) {
    if (!self) {
      if (e.path === want) self = e;
      else if (compareWalkOrder(e.path, want) > 0) break;
      continue;
    }
    if (!isWithin(e.path, want)) break;
    const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : ROOT_PATH;
    if (parent === want) entries.push(toBrowseEntry(e));
  }
  if (!self) throw new HoldfastError('PATH_NOT_FOUND', `no '${want}' in recovery point ${point.id} of source '${point.source}'`, { path: want, point: point.id });
  if (self.type !== 'dir') throw new HoldfastError('BAD_ARGUMENT', `'${want}' in recovery point ${point.id} is a ${self.type}, not a directory`, { path: want });
  return { dir: toBrowseEntry(self), entries };
}

/** The entry at `path` in the point. */
export async function findEntry(source: ChunkSource, point: PointRow, path: string, signal?: AbortSignal): Promise<Entry> {
  const want = pointPath(path);
  for await (const e of readManifest(source, point.manifest, signal)) {
    if (e.path === want) return e;
    if (compareWalkOrder(e.path, want) > 0) break;
  }
  throw new HoldfastError('PATH_NOT_FOUND', `no '${want}' in recovery point ${point.id} of source '${point.source}'`, { path: want, point: point.id });
}

/** A regular file's content, chunk by verified chunk; a damaged chunk ends the stream with an error. */
export function fileStream(source: ChunkSource, e: Entry, signal?: AbortSignal): Readable {
  if (!hasContent(e)) throw new HoldfastError('BAD_ARGUMENT', `'${e.path}' is a ${e.type}, not a file`, { path: e.path });
  return Readable.from(fileChunks(source, e, signal), { objectMode: false });
}

async function* fileChunks(source: ChunkSource, e: FileEntry, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  let pos = 0;
  let batch: Array<{ ref: ChunkRef; offset: number }> = [];
  let bytes = 0;
  const zeros = function* (upTo: number): Generator<Uint8Array> {
    while (pos < upTo) {
      const n = Math.min(upTo - pos, 1 << 20);
      pos += n;
      yield new Uint8Array(n);
    }
  };
  async function* flush(): AsyncGenerator<Uint8Array> {
    if (batch.length === 0) return;
    const data = await source.read(batch.map((b) => b.ref), signal);
    for (let i = 0; i < batch.length; i++) {
      yield* zeros((batch[i] as { offset: number }).offset);
      const d = data[i] as Uint8Array;
      pos += d.length;
      yield d;
    }
    batch = [];
    bytes = 0;
  }
  for (const c of chunkOffsets(e)) {
    batch.push(c);
    bytes += c.ref[1];
    if (bytes >= READ_BATCH_BYTES) yield* flush();
  }
  yield* flush();
  yield* zeros(e.size);
}
