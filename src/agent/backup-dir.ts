/**
 * Backs up a directory tree into a ChunkSink: walk, reuse the chunk lists of unchanged files
 * from the previous recovery point, read and chunk the rest, and write the manifest in walk
 * order. Returns the manifest's chunk list; committing it is the caller's job.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ChunkSink } from '../core/chunk-io.js';
import type { CodecBatcher } from '../workers/codec-batcher.js';
import type { CdcParams } from '../core/chunker.js';
import { ManifestWriter, PAGE_CHUNKS, type KeptFiles, type PageCache } from '../core/manifest-io.js';
import type { ChunkRef, Entry, FileEntry } from '../core/manifest.js';
import { errnoCode } from '../core/errors.js';
import { baseMeta, walkedEntry, type StatLike } from './file-meta.js';
import { chunkFile, chunkSmallFile, SMALL_FILE, type ChunkingContext } from './file-chunker.js';
import { walkTree, type WalkItem } from './tree-walker.js';
import type { TreeSignature } from './tree-signature.js';
import { ReadBudget } from './read-budget.js';

const WINDOW = 512;
/** File bytes read and not yet stored, at most (see ReadBudget). */
export const READ_BUDGET = 16 * 1024 * 1024;

export interface BackupProgress {
  entries: number;
  bytesDone: number;
  readBytes: number;
}

export interface DirBackupOptions {
  root: string;
  sink: ChunkSink;
  batcher: CodecBatcher;
  cdc: CdcParams;
  imageChunk: number;
  /** file entries of the previous recovery point, by path */
  parent?: Map<string, FileEntry>;
  exclude?: string[];
  /** symlinks inside the tree to back up as the directories they point at (restored as directories) */
  follow?: string[];
  /** read and hash every file even when its metadata matches the parent (a heavy consistency check) */
  verifyContent?: boolean;
  /** large files to cut into fixed image chunks (all-zero ones as holes) instead of CDC: disk images kept as files */
  fixedChunks?: (it: WalkItem) => boolean;
  /** keeps the files of the manifest written (for the next sync's parent) */
  keep?: KeptFiles;
  /** the source's pages of its last manifest (disk images kept as files have paged chunk lists) */
  pages?: PageCache;
  signal?: AbortSignal;
  onProgress?: (p: BackupProgress) => void;
  /** a walk of `root` the caller began: the items it took, the rest, and the walk's warnings */
  walked?: { items: Iterable<WalkItem>; rest: AsyncIterator<WalkItem>; warnings: string[] };
  /** fed every item of the walk */
  signature?: TreeSignature;
  /** told of each entry as it is written to the manifest, in order */
  onWritten?: (e: Entry) => void;
}

export interface BackupOutcome {
  manifest: ChunkRef[];
  entries: number;
  logicalBytes: number;
  readBytes: number;
  torn: string[];
  warnings: string[];
  /** files compared with the parent point (a consistency check's findings) */
  check?: CheckFindings;
}

/** What a comparison with the parent point found, in files. */
export interface CheckFindings {
  added: number;
  changed: number;
  removed: number;
  /** metadata said unchanged, content differed: the replica was inconsistent (heavy check only) */
  mismatched: number;
}

export function unchanged(prev: FileEntry | undefined, size: bigint, mtimeNs: bigint, ctimeNs: bigint, ino: bigint): prev is FileEntry {
  return (
    prev !== undefined &&
    prev.type === 'file' &&
    prev.torn !== true &&
    prev.size === Number(size) &&
    prev.mtimeNs === mtimeNs.toString() &&
    prev.ctimeNs === ctimeNs.toString() &&
    prev.ino === Number(ino)
  );
}

export async function backupDir(o: DirBackupOptions): Promise<BackupOutcome> {
  const root = resolve(o.root);
  const warnings: string[] = [];
  const torn: string[] = [];
  const counters = { readBytes: 0 };
  const progress: BackupProgress = { entries: 0, bytesDone: 0, readBytes: 0 };
  const ctx: ChunkingContext = { sink: o.sink, batcher: o.batcher, cdc: o.cdc, imageChunk: o.imageChunk, signal: o.signal, counters };
  const manifest = new ManifestWriter(o.sink, 'dir', { keep: o.keep, pageSpan: PAGE_CHUNKS * o.imageChunk, pages: o.pages });
  const links = new Map<string, Promise<FileEntry | undefined>>();
  let logicalBytes = 0;

  const toEntry = async (it: WalkItem): Promise<Entry | undefined> => {
    const w = await walkedEntry(it);
    if (!w || 'entry' in w) return w?.entry;
    const meta = w.file;
    const key = `${it.st.dev}:${it.st.ino}`;
    const first = it.st.nlink > 1n ? links.get(key) : undefined;
    if (first) {
      const target = await first;
      if (target) return { ...target, ...meta, type: 'hardlink', target: target.path, path: it.rel };
    }
    const work = fileEntry(it, meta);
    if (it.st.nlink > 1n && !first) links.set(key, work);
    return work;
  };

  const check: CheckFindings = { added: 0, changed: 0, removed: 0, mismatched: 0 };
  let matched = 0;
  const budget = new ReadBudget(READ_BUDGET);
  const fileEntry = async (it: WalkItem, meta: Omit<FileEntry, 'type' | 'size' | 'chunks'>): Promise<FileEntry | undefined> => {
    const prev = o.parent?.get(it.rel);
    if (prev) matched++;
    else check.added++;
    const same = unchanged(prev, it.st.size, it.st.mtimeNs, it.st.ctimeNs, it.st.ino);
    if (same && !o.verifyContent) {
      logicalBytes += prev.size;
      return { ...prev, ...meta, type: 'file' };
    }
    const release = await budget.take(Number(it.st.size));
    let e: FileEntry | undefined;
    try {
      e = await readFileEntry(it, meta);
    } finally {
      release();
    }
    if (prev && e && !sameContent(prev, e)) {
      check.changed++;
      if (same) check.mismatched++;
    }
    return e;
  };

  const readFileEntry = async (it: WalkItem, meta: Omit<FileEntry, 'type' | 'size' | 'chunks'>): Promise<FileEntry | undefined> => {
    try {
      if (it.st.size <= BigInt(SMALL_FILE) && it.st.blocks * 512n >= it.st.size) {
        const small = await chunkSmallFile(ctx, it.abs, it.st);
        if (small) {
          logicalBytes += Number(it.st.size);
          return { type: 'file', ...meta, size: Number(it.st.size), ino: Number(it.st.ino), chunks: small.chunks };
        }
      }
      const r = await chunkFile(ctx, it.abs, o.fixedChunks?.(it) ? 'image' : 'cdc');
      logicalBytes += r.size;
      if (r.torn) torn.push(it.rel);
      const e: FileEntry = { type: 'file', ...meta, ...baseMeta(r.stat), size: r.size, ino: Number(r.stat.ino), chunks: r.chunks };
      if (r.holes.length > 0) e.holes = r.holes;
      if (r.torn) e.torn = true;
      return e;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return undefined; // deleted since the walk saw it
      if (code === 'EACCES' || code === 'EPERM' || code === 'ELOOP' || code === 'EIO') {
        warnings.push(`${it.rel}: not readable (${code}); not in this recovery point`);
        return undefined;
      }
      throw err;
    }
  };

  const window: Array<Promise<Entry | undefined>> = [];
  const flushOne = async (): Promise<void> => {
    const e = await (window.shift() as Promise<Entry | undefined>);
    if (!e) return;
    await manifest.add(e);
    o.onWritten?.(e);
    progress.entries++;
    if (e.type === 'file') progress.bytesDone += e.size;
    progress.readBytes = counters.readBytes;
    o.onProgress?.(progress);
  };
  const exclude = new Set((o.exclude ?? []).map((p) => resolve(p)));
  const follow = await followed(o.follow ?? [], warnings);
  const walk = o.walked ? resume(o.walked.items, o.walked.rest) : walkTree(root, { exclude, follow, warnings, signal: o.signal, codec: o.batcher.codec });
  try {
    for await (const it of walk) {
      o.signature?.add(it);
      const p = toEntry(it);
      p.catch(() => undefined); // observed when it reaches the head of the window
      window.push(p);
      if (window.length >= WINDOW) await flushOne();
    }
    while (window.length > 0) await flushOne();
  } finally {
    // Never leave rejected promises unobserved when an earlier one failed.
    await Promise.allSettled(window);
  }
  // The walk the caller began keeps its own warnings (unreadable directories).
  if (o.walked) warnings.unshift(...o.walked.warnings);
  const refs = await manifest.finish();
  if (o.parent) check.removed = Math.max(0, o.parent.size - matched);
  return { manifest: refs, entries: manifest.entries, logicalBytes, readBytes: counters.readBytes, torn, warnings, check: o.parent ? check : undefined };
}

/** The items already taken, then the rest of the walk. */
async function* resume(items: Iterable<WalkItem>, rest: AsyncIterator<WalkItem>): AsyncGenerator<WalkItem> {
  yield* items;
  for (let n = await rest.next(); !n.done; n = await rest.next()) yield n.value;
}

function sameContent(a: FileEntry, b: FileEntry): boolean {
  return a.size === b.size && JSON.stringify(a.chunks) === JSON.stringify(b.chunks) && JSON.stringify(a.holes ?? []) === JSON.stringify(b.holes ?? []);
}

/** The directories behind symlinks to follow; one that is not a directory stays a symlink (a warning says so). */
async function followed(links: string[], warnings: string[]): Promise<Map<string, StatLike>> {
  const out = new Map<string, StatLike>();
  for (const l of links) {
    const st = await stat(l, { bigint: true }).catch((err: Error) => err);
    if (st instanceof Error || !st.isDirectory()) warnings.push(`${l}: not a readable directory behind the link (${st instanceof Error ? st.message : 'not a directory'}); kept as a symlink`);
    else out.set(resolve(l), st);
  }
  return out;
}
