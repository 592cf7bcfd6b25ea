/**
 * One sync of one source, whoever asks for it (the local CLI or a server job): pick the tracker,
 * read what changed from a consistent view, write chunks and the manifest into the ChunkSink.
 *
 * Two phases, because a tracker's state (a bitmap, a snapshot, a journal) may only move on once
 * the recovery point is committed: `syncSource` returns the outcome with `committed()` and
 * `abandon()`; the caller commits the point, then calls one of them.
 *
 * Trackers (agent/trackers/): 'qcow2-bitmap' for qcow2 images, 'btrfs' for subvolumes, 'inotify'
 * for dir sources the agent daemon keeps a change journal of, 'full' for everything else and as
 * the fallback when tracking state cannot be trusted.
 */
import { open } from 'node:fs/promises';
import type { ChunkSource } from '../core/chunk-io.js';
import { HoldfastError } from '../core/errors.js';
import { readManifest, type KeptFiles } from '../core/manifest-io.js';
import { asFile, type ChunkRef, type FileEntry } from '../core/manifest.js';
import { sqliteTracker } from './databases/sqlite-sync.js';
import { quiesce } from './quiesce.js';
import { btrfsTracker } from './trackers/btrfs.js';
import { fullTracker } from './trackers/full.js';
import { hasJournal, inotifyTracker } from './trackers/inotify.js';
import { qcow2BitmapTracker } from './trackers/qcow2-bitmap.js';
import { manifestKey, type PendingSync, type SyncRequest, type Tracker, type TrackerContext } from './trackers/tracker.js';
import { TrackerState } from './trackers/tracker-state.js';

export type { PendingSync, QemuLive, SyncKind, SyncOutcome, SyncRequest, TrackerChoice } from './trackers/tracker.js';

/** The parent point's files by path (a content-bearing hard link counts as a file). */
export async function parentFiles(chunks: ChunkSource, manifest: ChunkRef[]): Promise<Map<string, FileEntry>> {
  const map = new Map<string, FileEntry>();
  for await (const e of readManifest(chunks, manifest)) {
    const f = asFile(e);
    if (f) map.set(e.path, f);
  }
  return map;
}

/**
 * The files of the point each source last committed in this process, by source name: an agent
 * daemon's next btrfs sync takes its parent from here instead of reading the parent's manifest
 * back from the server (a 2 GiB image file's is 9.5 MiB: 0.6 s under load). Trusted only for the
 * exact manifest it was written as. Bounded by KEEP_MAX_REFS chunk references per source (about
 * 100 bytes each held between syncs: 26 MB at most, a 4 GiB image file's 16 KiB chunks).
 */
const committedFiles = new Map<string, { manifest: string; files: Map<string, FileEntry> }>();
const KEEP_MAX_REFS = 1 << 18;

export async function syncSource(r: SyncRequest): Promise<PendingSync> {
  const warnings: string[] = [];
  const tracker = await pickTracker(r, warnings);
  const cached = committedFiles.get(r.source.name);
  const loadParent = async (): Promise<Map<string, FileEntry> | undefined> => {
    if (!r.parent) return undefined;
    if (cached && cached.manifest === manifestKey(r.parent.manifest)) return cached.files;
    try {
      return await parentFiles(r.chunks, r.parent.manifest);
    } catch (err) {
      // A damaged previous point must not block protection: read everything instead.
      warnings.push(`previous recovery point ${r.parent.id} is unreadable (${(err as Error).message}); reading every file`);
      return undefined;
    }
  };
  // The inotify tracker reads the parent itself, and only when its journal is not empty; the
  // qcow2 tracker keeps the parent's chunk slots in its state and reads the parent only without
  // them; the full tracker asks for it only when the tree or image changed.
  const readsOwnParent = tracker === inotifyTracker || tracker === qcow2BitmapTracker || tracker === fullTracker;
  const files = readsOwnParent ? undefined : await loadParent();
  // Only the btrfs tracker hands its written files back; the others read or keep their own parent.
  const keep: KeptFiles | undefined = tracker === btrfsTracker ? { files: new Map(), maxRefs: KEEP_MAX_REFS, refs: 0, whole: true } : undefined;
  const ctx: TrackerContext = {
    r,
    parentFiles: files,
    loadParentFiles: tracker === fullTracker ? loadParent : undefined,
    keep,
    state: new TrackerState(r.stateDir, r.source.name, tracker.name),
    warnings,
    quiesce: async (take) => {
      const q = await quiesce(r.source.path, r, take);
      warnings.push(...q.warnings);
      return q.value;
    },
  };
  const pending = await tracker.sync(ctx);
  if (!keep) return pending;
  return {
    ...pending,
    committed: async (pointId) => {
      await pending.committed(pointId);
      if (keep.whole) committedFiles.set(r.source.name, { manifest: manifestKey(pending.outcome.manifest), files: keep.files });
    },
  };
}

async function pickTracker(r: SyncRequest, warnings: string[]): Promise<Tracker> {
  const choice = r.tracker ?? 'auto';
  const refuse = (): never => {
    throw new HoldfastError('BAD_ARGUMENT', `tracker '${choice}' cannot track a source of kind ${r.source.kind}`, { source: r.source.name });
  };
  switch (r.source.kind) {
    case 'sqlite':
      return sqliteTracker;
    case 'postgres':
      // Loaded when used: the pg driver is about 50 ms of every other sync's start-up.
      return (await import('./databases/postgres-backup.js')).postgresTracker;
    case 'btrfs':
      // 'full' still reads from a snapshot; the tracker then ignores the send stream.
      return choice === 'qcow2-bitmap' ? refuse() : btrfsTracker;
    case 'dir':
      if (choice !== 'auto' && choice !== 'full') refuse();
      // Only a running agent daemon keeps change journals; the local CLI's dir syncs stay 'full'.
      // A consistency check goes through the journal's tracker too: it compares with the parent
      // (trackedParent refuses the journal), and rotates the journal so tracking resumes after it.
      return choice === 'auto' && hasJournal(r.source.name, r.source.path) ? inotifyTracker : fullTracker;
    case 'image': {
      if (choice === 'btrfs') refuse();
      if (choice === 'full') return fullTracker;
      if (r.qemu || (await isQcow2(r.source.path))) return qcow2BitmapTracker;
      if (choice === 'qcow2-bitmap') warnings.push(`${r.source.path} is not a qcow2 image (no dirty bitmaps); reading everything and comparing hashes`);
      return fullTracker;
    }
  }
}

/** qcow2 files start with "QFI\xfb". */
async function isQcow2(path: string): Promise<boolean> {
  try {
    const fh = await open(path, 'r');
    try {
      const b = Buffer.alloc(4);
      await fh.read(b, 0, 4, 0);
      return b.equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]));
    } finally {
      await fh.close();
    }
  } catch {
    return false; // the reader names the missing path in its own error
  }
}
