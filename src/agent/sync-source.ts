/**
 * One sync of one source, whoever asks for it (the local CLI or a server job): pick the tracker,
 * read what changed from a consistent view, write chunks and the manifest into the ChunkSink.
 *
 * Two phases, because a tracker's state (a bitmap, a snapshot, a journal) may only move on once
 * the recovery point is committed: `syncSource` returns the outcome with `committed()` and
 * `abandon()`; the caller commits the point, then calls one of them.
 */
import type { ChunkSink, ChunkSource } from '../core/chunk-io.js';
import type { CdcParams } from '../core/chunker.js';
import { readManifest } from '../core/manifest-io.js';
import { hasContent, type ChunkRef, type FileEntry } from '../core/manifest.js';
import type { CodecBatcher } from '../workers/codec-batcher.js';
import { backupDir, type BackupOutcome, type BackupProgress } from './backup-dir.js';
import { backupImage } from './backup-image.js';

export type SyncKind = 'dir' | 'image';

export interface SyncRequest {
  source: { name: string; kind: SyncKind; path: string };
  /** the previous committed recovery point of this source, if any */
  parent?: { id: string; manifest: ChunkRef[] };
  sink: ChunkSink;
  /** where the parent's manifest (and, for repairs, its chunks) are read from */
  chunks: ChunkSource;
  batcher: CodecBatcher;
  cdc: CdcParams;
  imageChunk: number;
  /** absolute paths never to read (the local pool, the agent's own state) */
  exclude?: string[];
  signal?: AbortSignal;
  onProgress?: (p: BackupProgress) => void;
}

export interface SyncOutcome extends BackupOutcome {
  /** which tracker decided what to read: 'full' (metadata compare against the parent), … */
  tracker: string;
}

export interface PendingSync {
  outcome: SyncOutcome;
  /** the point is committed: the tracker may move on (drop an old bitmap or snapshot) */
  committed(pointId: string): Promise<void>;
  /** the point will not be committed: keep tracking state so the next sync sees these changes */
  abandon(): Promise<void>;
}

/** The parent point's files by path (a content-bearing hard link counts as a file). */
export async function parentFiles(chunks: ChunkSource, manifest: ChunkRef[]): Promise<Map<string, FileEntry>> {
  const map = new Map<string, FileEntry>();
  for await (const e of readManifest(chunks, manifest)) {
    if (e.type === 'file') map.set(e.path, e);
    else if (hasContent(e)) map.set(e.path, { ...e, type: 'file' });
  }
  return map;
}

export async function syncSource(r: SyncRequest): Promise<PendingSync> {
  const warnings: string[] = [];
  let files: Map<string, FileEntry> | undefined;
  if (r.parent) {
    try {
      files = await parentFiles(r.chunks, r.parent.manifest);
    } catch (err) {
      // A damaged previous point must not block protection: read everything instead.
      warnings.push(`previous recovery point ${r.parent.id} is unreadable (${(err as Error).message}); reading every file`);
    }
  }
  const common = { sink: r.sink, batcher: r.batcher, cdc: r.cdc, imageChunk: r.imageChunk, signal: r.signal, onProgress: r.onProgress };
  const outcome =
    r.source.kind === 'image'
      ? await backupImage({ ...common, path: r.source.path, parent: files ? [...files.values()][0] : undefined })
      : await backupDir({ ...common, root: r.source.path, parent: files, exclude: r.exclude });
  return {
    outcome: { ...outcome, warnings: [...warnings, ...outcome.warnings], tracker: 'full' },
    committed: () => Promise.resolve(),
    abandon: () => Promise.resolve(),
  };
}
