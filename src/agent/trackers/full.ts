/**
 * The tracker of last resort: no change map, so read everything and let the parent point decide
 * what is new (files by size, times and inode; image chunks by hash). Also what a tracked source
 * falls back to when its tracking state cannot be trusted. Without a snapshot, the quiesce window
 * (pre/post commands, fsfreeze) spans the whole read.
 */
import { backupDir } from '../backup-dir.js';
import { backupImage } from '../backup-image.js';
import { pageCacheOf, type PendingSync, type Tracker, type TrackerContext } from './tracker.js';

export const fullTracker: Tracker = {
  name: 'full',
  async sync(ctx: TrackerContext): Promise<PendingSync> {
    const r = ctx.r;
    const common = { sink: r.sink, batcher: r.batcher, cdc: r.cdc, imageChunk: r.imageChunk, pages: pageCacheOf(r.source.name), signal: r.signal, onProgress: r.onProgress };
    const files = ctx.parentFiles;
    const outcome = await ctx.quiesce(() =>
      r.source.kind === 'image'
        ? backupImage({ ...common, path: r.source.path, parent: files ? [...files.values()][0] : undefined, parentManifest: files?.size === 1 ? r.parent?.manifest : undefined })
        : backupDir({ ...common, root: r.source.path, parent: files, exclude: r.exclude, verifyContent: r.consistencyCheck === 'heavy' }),
    );
    return {
      outcome: { ...outcome, warnings: [...ctx.warnings, ...outcome.warnings], tracker: 'full' },
      committed: () => Promise.resolve(),
      abandon: () => Promise.resolve(),
    };
  },
};
