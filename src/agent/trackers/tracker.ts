/**
 * What every change tracker shares: the sync request and its two-phase result (the seam that
 * `sync-source.ts` exports), and the Tracker interface each tracker under this folder implements.
 *
 * A tracker knows what changed since the recovery point it last saw committed (its state names
 * that point). When the caller's parent point is another one (state lost, point deleted, another
 * agent synced), the tracker must not trust its change map: it reads everything and compares
 * hashes instead, reports tracker 'full' and says why in a warning.
 */
import type { ChunkSink, ChunkSource } from '../../core/chunk-io.js';
import type { CdcParams } from '../../core/chunker.js';
import { PageCache, type KeptFiles } from '../../core/manifest-io.js';
import type { ChunkRef, FileEntry } from '../../core/manifest.js';
import type { CodecBatcher } from '../../workers/codec-batcher.js';
import type { BackupOutcome, BackupProgress } from '../backup-dir.js';
import type { QuiesceOptions } from '../quiesce.js';
import type { TrackerState } from './tracker-state.js';

/** `btrfs` sources produce `dir` manifests (restored like any directory). */
export type SyncKind = 'dir' | 'image' | 'btrfs' | 'postgres' | 'sqlite';

/** 'auto' picks by source: qcow2 image → qcow2-bitmap, btrfs → btrfs, anything else → full. */
export type TrackerChoice = 'auto' | 'full' | 'qcow2-bitmap' | 'btrfs';

/** A running QEMU that serves the image (live mode of the qcow2 tracker). */
export interface QemuLive {
  /** its QMP socket */
  qmpSocket: string;
  /** the node name of the image's format node (qcow2) */
  node: string;
  /** an NBD server QEMU already runs on this Unix socket; otherwise the tracker starts one for the sync */
  nbdSocket?: string;
}

export interface SyncRequest extends Partial<QuiesceOptions> {
  source: { name: string; kind: SyncKind; path: string };
  /** the previous committed recovery point of this source, if any */
  parent?: { id: string; manifest: ChunkRef[] };
  sink: ChunkSink;
  /** where the parent's manifest (and, for repairs, its chunks) are read from */
  chunks: ChunkSource;
  batcher: CodecBatcher;
  cdc: CdcParams;
  imageChunk: number;
  /** the agent's tracker state (bitmap names, snapshot paths, the point they lead up to) */
  stateDir: string;
  tracker?: TrackerChoice;
  /** qcow2 served by a running QEMU: rotate bitmaps and fleece through QMP */
  qemu?: QemuLive;
  /** btrfs: where read-only snapshots go (same filesystem); default SUBVOLUME/.holdfast-snapshots */
  snapshotDir?: string;
  /** absolute paths never to read (the local pool, the agent's own state) */
  exclude?: string[];
  /**
   * Ignore the change map and compare the source with the parent point: 'light' by metadata
   * (size, times, inode), 'heavy' by reading and hashing every file. Only what differs is sent.
   */
  consistencyCheck?: 'light' | 'heavy';
  /** kind 'postgres': connection and binaries (source options) */
  postgres?: { connect: string; bin?: string };
  /** kind 'postgres': how archive_command reaches this agent (its daemon's log socket, the source's key) */
  pgArchive?: { node: string; cli: string; socket: string; key: string };
  /** kind 'sqlite': shipping mode (source options) */
  sqlite?: { ship?: 'continuous' | 'frequency' };
  /** the group's sync frequency: database sources ship their logs at least this often */
  syncEveryMs?: number | null;
  signal?: AbortSignal;
  onProgress?: (p: BackupProgress) => void;
}

export interface SyncOutcome extends BackupOutcome {
  /** which tracker decided what to read: 'full' (compare against the parent), 'qcow2-bitmap', 'btrfs' */
  tracker: string;
  /** database sources: facts stored with the point, and when the copy became consistent */
  meta?: Record<string, unknown>;
  pointTime?: string;
}

export interface PendingSync {
  outcome: SyncOutcome;
  /** the point is committed: the tracker may move on (drop an old bitmap or snapshot) */
  committed(pointId: string): Promise<void>;
  /** the point will not be committed: keep tracking state so the next sync sees these changes */
  abandon(): Promise<void>;
}

/** What syncSource hands a tracker besides the request. */
export interface TrackerContext {
  r: SyncRequest;
  /** the parent point's files by path; undefined without a (readable) parent */
  parentFiles?: Map<string, FileEntry>;
  /** for a tracker that reads the parent only if it must: its files, read when asked (a warning if unreadable) */
  loadParentFiles?: () => Promise<Map<string, FileEntry> | undefined>;
  /** where a tracker that reads parentFiles keeps the files of the manifest it writes (sync-source.ts) */
  keep?: KeptFiles;
  /** this source's state file for this tracker */
  state: TrackerState;
  /** runs `take` (the snapshot moment) inside the pre/post commands and fsfreeze */
  quiesce<T>(take: () => Promise<T>): Promise<T>;
  /** warnings so far (the parent's readability); the tracker adds its own */
  warnings: string[];
}

export interface Tracker {
  readonly name: string;
  sync(ctx: TrackerContext): Promise<PendingSync>;
}

/**
 * Whether the tracker's state leads up to the caller's parent point. When it does not, `why`
 * is the warning to give before reading everything.
 */
export function trackedParent(statePoint: string | undefined, parent: SyncRequest['parent'], check?: SyncRequest['consistencyCheck']): { ok: boolean; why?: string } {
  if (!parent) return { ok: false };
  if (check) return { ok: false, why: `consistency check (${check}) requested: reading everything and comparing with recovery point ${parent.id}` };
  if (statePoint === undefined) return { ok: false, why: `no change tracking state leads to recovery point ${parent.id}; reading everything and comparing hashes` };
  if (statePoint !== parent.id) {
    return { ok: false, why: `change tracking state leads to recovery point ${statePoint}, but the previous recovery point is ${parent.id}; reading everything and comparing hashes` };
  }
  return { ok: true };
}

/** Each source's manifest pages, kept by this process from one sync to the next (value-checked, so never wrong). */
const pageCaches = new Map<string, PageCache>();

export function pageCacheOf(source: string): PageCache {
  let c = pageCaches.get(source);
  if (!c) pageCaches.set(source, (c = new PageCache()));
  return c;
}

/** A manifest's identity for the caches of committed points: its chunk list, compared exactly. */
export const manifestKey = (m: ChunkRef[]): string => m.map(([d, l]) => `${d}:${l}`).join(',');
