/**
 * The tracker of last resort: no change map, so read everything and let the parent point decide
 * what is new (files by size, times and inode; image chunks by hash). Also what a tracked source
 * falls back to when its tracking state cannot be trusted. Without a snapshot, the quiesce window
 * (pre/post commands, fsfreeze) spans the whole read.
 */
import { firstEntryHead } from '../../core/manifest-io.js';
import { backupDir, type BackupOutcome } from '../backup-dir.js';
import { backupImage } from '../backup-image.js';
import { pageCacheOf, type PendingSync, type Tracker, type TrackerContext } from './tracker.js';

export const fullTracker: Tracker = {
  name: 'full',
  async sync(ctx: TrackerContext): Promise<PendingSync> {
    const r = ctx.r;
    const common = { sink: r.sink, batcher: r.batcher, cdc: r.cdc, imageChunk: r.imageChunk, pages: pageCacheOf(r.source.name), signal: r.signal, onProgress: r.onProgress };
    const image = async (): Promise<BackupOutcome> => {
      // An image point's manifest holds one entry, whose head says whether anything changed:
      // the parent's pages are not read (sync-source leaves them to this tracker).
      const parent = r.parent;
      const head = parent
        ? await firstEntryHead(r.chunks, parent.manifest, r.signal).catch((err: unknown) => {
            // A damaged previous point must not block protection: read everything instead.
            ctx.warnings.push(`previous recovery point ${parent.id} is unreadable (${(err as Error).message}); reading every file`);
            return undefined;
          })
        : undefined;
      return backupImage({ ...common, path: r.source.path, parentHead: head, parentManifest: head ? parent?.manifest : undefined });
    };
    const outcome = await ctx.quiesce(() =>
      r.source.kind === 'image' ? image() : backupDir({ ...common, root: r.source.path, parent: ctx.parentFiles, exclude: r.exclude, verifyContent: r.consistencyCheck === 'heavy' }),
    );
    return {
      outcome: { ...outcome, warnings: [...ctx.warnings, ...outcome.warnings], tracker: 'full' },
      committed: () => Promise.resolve(),
      abandon: () => Promise.resolve(),
    };
  },
};
