/**
 * The local data path: the agent's readers and restorer wired straight to a pool directory in
 * this process (`--pool DIR`). The server wires the same pieces across the network.
 */
import { randomBytes } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CodecBatcher } from '../workers/codec-batcher.js';
import { normalizeSubPath, restoreSelection } from '../core/entry-path.js';
import { HoldfastError } from '../core/errors.js';
import type { Pool } from '../pool/pool.js';
import type { PointRow, SourceKind } from '../pool/catalog.js';
import type { BackupProgress } from '../agent/backup-dir.js';
// Loaded when used: a restore needs none of the trackers, a backup none of the restore path.
import type { PendingSync, SyncKind, SyncRequest } from '../agent/sync-source.js';
import type { RestoreOutcome, RestoreProgress } from '../agent/restore.js';

export interface LocalBackupResult {
  point: string;
  source: string;
  kind: SourceKind;
  time: string;
  parent: string | null;
  entries: number;
  logicalBytes: number;
  readBytes: number;
  newBytes: number;
  storedNewBytes: number;
  newChunks: number;
  durationMs: number;
  torn: string[];
  warnings: string[];
  tracker: string;
}

/** Tracker options of a local backup; the state directory defaults to POOL/agent-state. */
export type LocalTracking = Partial<Pick<SyncRequest, 'stateDir' | 'tracker' | 'qemu' | 'snapshotDir' | 'preSnapshot' | 'postSnapshot' | 'timeoutMs' | 'fsfreeze'>>;

export async function localBackup(
  pool: Pool,
  o: { source: string; kind: SyncKind; path: string; signal?: AbortSignal; onProgress?: (p: BackupProgress) => void; tracking?: LocalTracking },
): Promise<LocalBackupResult> {
  const started = Date.now();
  // A btrfs subvolume's recovery points are directory manifests: the catalog knows it as 'dir'.
  const kind: SourceKind = o.kind === 'image' ? 'image' : 'dir';
  const time = new Date(started).toISOString();
  const existing = pool.catalog.source(o.source);
  if (existing && existing.kind !== kind) {
    throw new HoldfastError('KIND_MISMATCH', `source '${o.source}' is of kind ${existing.kind}; it cannot take a ${kind} backup`, { source: o.source });
  }
  let path: string;
  try {
    path = await realpath(resolve(o.path));
  } catch {
    path = resolve(o.path); // the reader names the missing path in its own error
  }
  const parent = existing ? pool.catalog.latestPoint(o.source) : undefined;
  const { syncSource } = await import('../agent/sync-source.js');
  const session = pool.startSession();
  const batcher = new CodecBatcher(pool.codec, session.compressionLevel);
  let pending: PendingSync | undefined;
  let stats;
  try {
    pending = await syncSource({
      source: { name: o.source, kind: o.kind, path },
      parent: parent ? { id: parent.id, manifest: parent.manifest } : undefined,
      sink: session,
      chunks: pool.reader,
      batcher,
      cdc: pool.config.cdc,
      imageChunk: pool.config.imageChunk,
      exclude: [await realpath(pool.dir)],
      signal: o.signal,
      onProgress: o.onProgress,
      ...o.tracking,
      stateDir: resolve(o.tracking?.stateDir ?? join(pool.dir, 'agent-state')),
    });
    stats = await session.finish();
  } catch (err) {
    session.abort();
    await pending?.abandon();
    throw err;
  }
  const outcome = pending.outcome;
  const id = randomBytes(6).toString('hex');
  const row: PointRow = {
    id,
    source: o.source,
    time,
    kind,
    manifest: outcome.manifest,
    logicalBytes: outcome.logicalBytes,
    files: outcome.entries,
    readBytes: outcome.readBytes,
    newBytes: stats.newBytes,
    storedNewBytes: stats.storedNewBytes,
    durationMs: Date.now() - started,
    parent: parent?.id ?? null,
    torn: outcome.torn.length,
  };
  try {
    await pool.commitPoint(row, path);
  } catch (err) {
    await pending.abandon();
    throw err;
  }
  await pending.committed(id);
  return {
    point: id,
    source: o.source,
    kind,
    time,
    parent: row.parent,
    entries: outcome.entries,
    logicalBytes: outcome.logicalBytes,
    readBytes: outcome.readBytes,
    newBytes: stats.newBytes,
    storedNewBytes: stats.storedNewBytes,
    newChunks: stats.newChunks,
    durationMs: Date.now() - started,
    torn: outcome.torn,
    warnings: outcome.warnings,
    tracker: outcome.tracker,
  };
}

export async function localRestore(
  pool: Pool,
  o: { source: string; point?: string; at?: string; paths?: string[]; to: string; overwrite: boolean; signal?: AbortSignal; onProgress?: (p: RestoreProgress) => void },
): Promise<RestoreOutcome & { point: string; source: string }> {
  const p = pool.resolvePoint(o.source, { point: o.point, at: o.at });
  for (const x of o.paths ?? []) {
    try {
      normalizeSubPath(x);
    } catch {
      throw new HoldfastError('BAD_ARGUMENT', `--path '${x}' is not a path inside the recovery point (no '..' components)`);
    }
  }
  const chosen = o.paths?.length ? restoreSelection(o.paths) : [];
  const { restore } = await import('../agent/restore.js');
  const out = await restore({
    source: pool.reader,
    manifest: p.manifest,
    kind: p.kind,
    target: o.to,
    ...(chosen.length > 1 ? { subPaths: chosen } : { subPath: chosen[0] }),
    overwrite: o.overwrite,
    signal: o.signal,
    onProgress: o.onProgress,
    label: `recovery point ${p.id} of source '${p.source}'`,
    codec: pool.codec,
  });
  return { ...out, point: p.id, source: p.source };
}
