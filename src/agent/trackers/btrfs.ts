/**
 * The btrfs tracker: a read-only snapshot of the subvolume per sync is the consistent view, and
 * `btrfs send --no-data -p PREV CUR` says what changed between the previous sync's snapshot and
 * this one (files created, byte ranges written, sizes set, renames; deletions show as absence).
 * The snapshot is walked for metadata (cheap: no data is read); a file's data is read only when
 * btrfs says it changed, and then only its changed chunks (`cdc-rechunk`); everything else reuses
 * the parent point's chunk list, found across renames. Manifests are of kind `dir`.
 *
 * Snapshots live in `snapshotDir` (default SUBVOLUME/.holdfast-snapshots, excluded from the
 * manifest) as `<source>@<time>`. The state names the point and its snapshot. committed() saves
 * the state, then deletes the source's other snapshots; abandon() deletes the new one. A killed
 * sync leaves a stray snapshot that the next commit deletes; the state still names the previous
 * snapshot, so the next sync compares against it and misses nothing.
 */
import { lstat, mkdir, open, readdir, stat, statfs } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { ManifestWriter, PAGE_CHUNKS, type KeptFiles } from '../../core/manifest-io.js';
import { chunkOffsets, type ChunkRef, type Entry, type FileEntry } from '../../core/manifest.js';
import { HoldfastError, errnoCode } from '../../core/errors.js';
import { spawnChild } from '../../native/spawn.js';
import { backupDir, type BackupOutcome, type BackupProgress } from '../backup-dir.js';
import { walkedEntry } from '../file-meta.js';
import { chunkFile, chunkSmallFile, seekDataExtents, SMALL_FILE, type ChunkingContext } from '../file-chunker.js';
import { walkTree, type WalkItem } from '../tree-walker.js';
import { changedRanges, fileExtents } from './btrfs-extent-diff.js';
import { imageFileContent, isDiskImageFile } from './btrfs-image-file.js';
import { sendChanges, type SendChanges } from './btrfs-send-stream.js';
import { rechunk } from './cdc-rechunk.js';
import type { ByteRange } from '../nbd/nbd-client.js';
import { runTool } from './run-tool.js';
import { pageCacheOf, trackedParent, type PendingSync, type SyncRequest, type Tracker, type TrackerContext } from './tracker.js';

const BTRFS_SUPER_MAGIC = 0x9123683e;
/** The root directory of every btrfs subvolume has this inode number. */
const SUBVOLUME_ROOT_INO = 256n;

interface BtrfsState {
  pointId: string;
  snapshot: string;
}

export const btrfsTracker: Tracker = {
  name: 'btrfs',
  sync,
};

async function sync(ctx: TrackerContext): Promise<PendingSync> {
  const r = ctx.r;
  const path = resolve(r.source.path);
  await checkSubvolume(path);
  const snapDir = resolve(r.snapshotDir ?? join(path, '.holdfast-snapshots'));
  await mkdir(snapDir, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[:.]/g, '');
  const snapshot = join(snapDir, `${r.source.name}@${stamp}`);
  await ctx.quiesce(() => runTool('btrfs', ['subvolume', 'snapshot', '-r', path, snapshot], r.signal));

  // Paths never to read, as they appear inside the snapshot.
  const exclude = [snapDir, ...(r.exclude ?? [])].map((p) => resolve(p)).filter((p) => p === path || p.startsWith(`${path}/`)).map((p) => join(snapshot, relative(path, p)));
  let outcome: BackupOutcome;
  let incremental = false;
  try {
    const state = await ctx.state.load<BtrfsState>();
    const t = trackedParent(state?.pointId, r.parent, r.consistencyCheck);
    const prevOk = t.ok && state !== undefined && ctx.parentFiles !== undefined && (await isDir(state.snapshot));
    if (t.ok && !prevOk) ctx.warnings.push(`the snapshot of the previous recovery point is gone (${state?.snapshot ?? 'none'}); reading everything and comparing hashes`);
    else if (t.why) ctx.warnings.push(t.why);
    if (prevOk && state && ctx.parentFiles && r.tracker !== 'full') {
      const changes = sendChanges(await sendStream(state.snapshot, snapshot, r.signal));
      outcome = await incrementalBackup(r, snapshot, state.snapshot, exclude, ctx.parentFiles, changes, ctx.keep);
      incremental = true;
    } else {
      outcome = await backupDir({
        root: snapshot,
        sink: r.sink,
        batcher: r.batcher,
        cdc: r.cdc,
        imageChunk: r.imageChunk,
        parent: ctx.parentFiles,
        exclude,
        verifyContent: r.consistencyCheck === 'heavy',
        fixedChunks: (it) => isDiskImageFile(it.rel, it.st.size),
        keep: ctx.keep,
        pages: pageCacheOf(r.source.name),
        signal: r.signal,
        onProgress: r.onProgress,
      });
    }
  } catch (err) {
    await deleteSnapshot(snapshot).catch(() => undefined);
    throw err;
  }
  return {
    outcome: { ...outcome, warnings: [...ctx.warnings, ...outcome.warnings], tracker: incremental ? 'btrfs' : 'full' },
    committed: async (pointId) => {
      await ctx.state.save({ pointId, snapshot } satisfies BtrfsState);
      // Best effort: a snapshot left here is deleted by the next commit.
      for (const name of await readdir(snapDir).catch(() => [] as string[])) {
        const p = join(snapDir, name);
        if (name.startsWith(`${r.source.name}@`) && p !== snapshot) await deleteSnapshot(p).catch(() => undefined);
      }
    },
    abandon: async () => {
      await deleteSnapshot(snapshot).catch(() => undefined);
    },
  };
}

async function checkSubvolume(path: string): Promise<void> {
  let st;
  let fs;
  try {
    st = await stat(path, { bigint: true });
    fs = await statfs(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new HoldfastError('PATH_NOT_FOUND', `source path ${path} does not exist`, { path });
    throw new HoldfastError('PATH_UNREADABLE', `cannot read source path ${path}: ${(err as Error).message}`, { path });
  }
  if (fs.type !== BTRFS_SUPER_MAGIC || st.ino !== SUBVOLUME_ROOT_INO) {
    throw new HoldfastError('BAD_ARGUMENT', `source path ${path} is not a btrfs subvolume (create one with 'btrfs subvolume create', or use --kind dir)`, { path });
  }
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isDirectory(), () => false);
}

function deleteSnapshot(p: string): Promise<string> {
  return runTool('btrfs', ['subvolume', 'delete', p]);
}

function sendStream(prev: string, cur: string, signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const child = spawnChild('btrfs', ['send', '--no-data', '-q', '-p', prev, cur], { signal, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err: Error) => reject(new HoldfastError('SOURCE_UNREADABLE', `btrfs send failed: ${err.message}`, {}, { cause: err })));
    child.on('close', (code: number | null) => {
      if (code === 0) resolvePromise(Buffer.concat(out));
      else reject(new HoldfastError('SOURCE_UNREADABLE', `btrfs send -p ${prev} ${cur} failed: ${stderr.trim()}`));
    });
  });
}

/** The parent's chunks per data extent, if its extents are exactly `now`; else undefined. */
function sameExtents(prev: FileEntry, now: Array<[number, number]>): Array<{ start: number; end: number; chunks: ChunkRef[] }> | undefined {
  const out = now.map(([start, end]) => ({ start, end, chunks: [] as ChunkRef[] }));
  let covered = 0;
  let i = 0;
  for (const { ref, offset } of chunkOffsets(prev)) {
    while (i < out.length && offset >= (out[i] as { end: number }).end) i++;
    const x = out[i];
    if (!x || offset < x.start || offset + ref[1] > x.end) return undefined;
    x.chunks.push(ref);
    covered += ref[1];
  }
  return covered === now.reduce((n, [s, e]) => n + e - s, 0) ? out : undefined;
}

interface InodeChanges {
  created: boolean;
  written: ByteRange[];
  truncated?: number;
}

/**
 * The stream's changes by inode: btrfs names a hard-linked file by any one of its names, and the
 * walk may meet another first.
 */
async function changesByInode(root: string, c: SendChanges): Promise<Map<bigint, InodeChanges>> {
  const out = new Map<bigint, InodeChanges>();
  const at = async (p: string): Promise<InodeChanges | undefined> => {
    if (p === '') return undefined;
    const st = await lstat(join(root, p), { bigint: true }).catch(() => undefined);
    if (!st?.isFile()) return undefined; // gone again later in the stream, or not a file
    let e = out.get(st.ino);
    if (!e) out.set(st.ino, (e = { created: false, written: [] }));
    return e;
  };
  for (const p of c.created) {
    const e = await at(p);
    if (e) e.created = true;
  }
  for (const [p, ranges] of c.written) (await at(p))?.written.push(...ranges);
  for (const [p, size] of c.truncated) {
    const e = await at(p);
    if (e) e.truncated = size;
  }
  return out;
}

/**
 * The snapshot's manifest: the walk gives every object and its metadata; file data comes from
 * the parent point unless btrfs reported the file created or written.
 */
async function incrementalBackup(r: SyncRequest, root: string, prevRoot: string, exclude: string[], parent: Map<string, FileEntry>, changes: SendChanges, keep?: KeptFiles): Promise<BackupOutcome> {
  const warnings: string[] = [];
  const counters = { readBytes: 0 };
  const progress: BackupProgress = { entries: 0, bytesDone: 0, readBytes: 0 };
  const ctx: ChunkingContext = { sink: r.sink, batcher: r.batcher, cdc: r.cdc, imageChunk: r.imageChunk, signal: r.signal, counters };
  const manifest = new ManifestWriter(r.sink, 'dir', { keep, pageSpan: PAGE_CHUNKS * r.imageChunk, pages: pageCacheOf(r.source.name), parentManifest: r.parent?.manifest });
  const links = new Map<string, FileEntry>();
  let logicalBytes = 0;
  const byIno = await changesByInode(root, changes);

  const readWhole = async (it: WalkItem, meta: Omit<FileEntry, 'type' | 'size' | 'chunks'>): Promise<FileEntry> => {
    if (isDiskImageFile(it.rel, it.st.size)) return imageEntry(it, meta);
    if (it.st.size <= BigInt(SMALL_FILE) && it.st.blocks * 512n >= it.st.size) {
      const small = await chunkSmallFile(ctx, it.abs, it.st);
      if (small) return { type: 'file', ...meta, size: Number(it.st.size), ino: Number(it.st.ino), chunks: small.chunks };
    }
    const c = await chunkFile(ctx, it.abs, 'cdc');
    const e: FileEntry = { type: 'file', ...meta, size: c.size, ino: Number(it.st.ino), chunks: c.chunks };
    if (c.holes.length > 0) e.holes = c.holes;
    return e;
  };

  /** A disk image file: fixed chunks; with `prev` on the same grid only the written slots are read. */
  const imageEntry = async (it: WalkItem, meta: Omit<FileEntry, 'type' | 'size' | 'chunks'>, prev?: FileEntry, written?: ByteRange[]): Promise<FileEntry> => {
    const size = Number(it.st.size);
    const { chunks, holes } = await imageFileContent({ sink: r.sink, batcher: r.batcher, imageChunk: r.imageChunk, signal: r.signal, counters }, it.abs, size, prev, written);
    return { type: 'file', ...meta, size, ino: Number(it.st.ino), chunks, ...(holes.length > 0 ? { holes } : {}) };
  };

  const fileEntry = async (it: WalkItem, meta: Omit<FileEntry, 'type' | 'size' | 'chunks'>): Promise<FileEntry> => {
    const size = Number(it.st.size);
    const ch = byIno.get(it.st.ino);
    const prev = ch?.created ? undefined : parent.get(changes.oldPath(it.rel));
    const written = ch?.written ?? [];
    const reach = Math.max(0, ...written.map((w) => w.offset + w.length));
    // Belt and braces: a different inode, or a size btrfs did not explain, means read it.
    const explained = prev !== undefined && (prev.size === size || ch?.truncated === size || (size > prev.size && reach >= size));
    if (!prev || prev.torn || (prev.ino !== undefined && prev.ino !== Number(it.st.ino)) || !explained) return readWhole(it, meta);
    // Truncated and grown back to its old size with nothing written: unusual; do not guess.
    if (written.length === 0 && prev.size === size && ch?.truncated !== undefined) return readWhole(it, meta);
    if (written.length === 0 && prev.size === size) return { type: 'file', ...meta, size, ino: Number(it.st.ino), chunks: prev.chunks, ...(prev.holes ? { holes: prev.holes } : {}) };
    if (size <= SMALL_FILE) return readWhole(it, meta);
    if (isDiskImageFile(it.rel, size)) {
      // Narrowed to the blocks whose extents differ from the previous snapshot's file.
      const [was, now] = await Promise.all([fileExtents(join(prevRoot, changes.oldPath(it.rel)), r.signal), fileExtents(it.abs, r.signal)]);
      return imageEntry(it, meta, prev, was && now ? changedRanges(written, was, now) : written);
    }
    const sparse = it.st.blocks * 512n < it.st.size || (prev.holes?.length ?? 0) > 0;
    const fh = await open(it.abs, 'r');
    try {
      const rc = { sink: r.sink, cdc: r.cdc, signal: r.signal, counters };
      if (!sparse) return { type: 'file', ...meta, size, ino: Number(it.st.ino), chunks: await rechunk(rc, fh, prev.chunks, prev.size, size, written) };
      // A sparse file is cut per data extent: re-cut the written extents if the holes stayed put.
      const extents = prev.size === size ? sameExtents(prev, seekDataExtents(fh.fd, size)) : undefined;
      if (!extents) return await readWhole(it, meta);
      const chunks: ChunkRef[] = [];
      for (const x of extents) {
        const hit = written.some((w) => w.offset < x.end && w.offset + w.length > x.start);
        chunks.push(...(hit ? await rechunk(rc, fh, x.chunks, x.end - x.start, x.end - x.start, written, x.start) : x.chunks));
      }
      return { type: 'file', ...meta, size, ino: Number(it.st.ino), chunks, ...(prev.holes ? { holes: prev.holes } : {}) };
    } finally {
      await fh.close();
    }
  };

  const toEntry = async (it: WalkItem): Promise<Entry | undefined> => {
    const w = await walkedEntry(it);
    if (!w || 'entry' in w) return w?.entry;
    const meta = w.file;
    const key = `${it.st.ino}`;
    const first = it.st.nlink > 1n ? links.get(key) : undefined;
    if (first) return { ...first, ...meta, type: 'hardlink', target: first.path, path: it.rel };
    const e = await fileEntry(it, meta);
    if (it.st.nlink > 1n) links.set(key, e);
    logicalBytes += e.size;
    return e;
  };

  // The snapshot is read-only: nothing changes under the walk, so entries are made in order.
  for await (const it of walkTree(root, { exclude: new Set(exclude), warnings, signal: r.signal, codec: r.batcher.codec })) {
    const e = await toEntry(it);
    if (!e) continue;
    await manifest.add(e);
    progress.entries++;
    if (e.type === 'file') progress.bytesDone += e.size;
    progress.readBytes = counters.readBytes;
    r.onProgress?.(progress);
  }
  const refs = await manifest.finish();
  return { manifest: refs, entries: manifest.entries, logicalBytes, readBytes: counters.readBytes, torn: [], warnings };
}
