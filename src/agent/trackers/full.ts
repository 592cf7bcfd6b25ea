/**
 * The tracker of last resort: no change map, so read everything and let the parent point decide
 * what is new (files by size, times and inode; image chunks by hash). Also what a tracked source
 * falls back to when its tracking state cannot be trusted. Without a snapshot, the quiesce window
 * (pre/post commands, fsfreeze) spans the whole read.
 *
 * Nothing changed is the common case and is cheap both ways: an image compares its stat with
 * the head of the parent's one entry; a tree compares its walk's signature (`tree-signature`)
 * with the one saved when the parent was committed. Either way the parent's manifest is then
 * this point's, neither read back nor written again.
 */
import { resolve } from 'node:path';
import { firstEntryHead } from '../../core/manifest-io.js';
import { backupDir, type BackupOutcome } from '../backup-dir.js';
import { backupImage } from '../backup-image.js';
import { entryType } from '../file-meta.js';
import { TreeSignature } from '../tree-signature.js';
import { replayWalk, walkTree, type WalkItem, type WalkRecord } from '../tree-walker.js';
import { pageCacheOf, type PendingSync, type Tracker, type TrackerContext } from './tracker.js';

interface FullState {
  pointId: string;
  /** the tree signature of that point's walk; absent when it may not be reused */
  tree?: string;
}

/** Walk items whose listings are kept while deciding whether the tree changed; a larger tree is backed up without waiting. */
const HOLD_ITEMS = 200_000;

export const fullTracker: Tracker = {
  name: 'full',
  async sync(ctx: TrackerContext): Promise<PendingSync> {
    const r = ctx.r;
    const common = { sink: r.sink, batcher: r.batcher, cdc: r.cdc, imageChunk: r.imageChunk, pages: pageCacheOf(r.source.name), signal: r.signal, onProgress: r.onProgress };
    const image = async (): Promise<BackupOutcome> => {
      // An image point's manifest holds one entry, whose head says whether anything changed:
      // the parent's pages are not read.
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

    let tree: string | undefined;
    const dir = async (): Promise<BackupOutcome> => {
      const root = resolve(r.source.path);
      const exclude = (r.exclude ?? []).map((p) => resolve(p));
      const settings = { v: 2 /* the signature format */, root, exclude, cdc: r.cdc, imageChunk: r.imageChunk };
      const state = r.consistencyCheck ? undefined : await ctx.state.load<FullState>();
      let walked: { items: Iterable<WalkItem>; rest: AsyncIterator<WalkItem>; warnings: string[] } | undefined;
      if (r.parent && state?.tree && state.pointId === r.parent.id) {
        // Walk first: if the signature is the parent's, its manifest is this point's. The walk's
        // listings are kept, not its items: a changed tree is walked again from them.
        const sig = new TreeSignature(settings);
        const count = new TreeCount();
        const warnings: string[] = [];
        const record: WalkRecord = new Map();
        const rest = walkTree(root, { exclude: new Set(exclude), warnings, signal: r.signal, codec: r.batcher.codec, record });
        let first: WalkItem | undefined;
        let n = await rest.next();
        for (; !n.done && count.items < HOLD_ITEMS; n = await rest.next()) {
          first ??= n.value;
          sig.add(n.value);
          count.add(n.value);
        }
        if (n.done && warnings.length === 0 && sig.digest() === state.tree) {
          tree = state.tree;
          return { manifest: r.parent.manifest, entries: count.entries, logicalBytes: count.logicalBytes, readBytes: 0, torn: [], warnings: [] };
        }
        const replayed = first ? replayWalk(first, record, count.items) : [];
        const next = n.done ? [] : [n.value]; // taken when the hold filled, before the rest
        walked = { items: (function* () { yield* replayed; yield* next; })(), rest, warnings };
      }
      // Otherwise backed up as walked, the parent's files read now; the walk's signature kept for the next sync.
      const s = new TreeSignature(settings);
      const out = await backupDir({ ...common, root, parent: await ctx.loadParentFiles?.(), exclude, walked, signature: s, verifyContent: r.consistencyCheck === 'heavy' });
      tree = s.digest();
      return out;
    };

    const outcome = await ctx.quiesce(() => (r.source.kind === 'image' ? image() : dir()));
    // A signature is kept only for a point made of exactly what the walk saw.
    const reusable = r.source.kind !== 'image' && outcome.torn.length === 0 && outcome.warnings.length === 0 && ctx.warnings.length === 0;
    return {
      outcome: { ...outcome, warnings: [...ctx.warnings, ...outcome.warnings], tracker: 'full' },
      committed: async (pointId) => {
        if (r.source.kind === 'image') return;
        await ctx.state.save(reusable && tree ? ({ pointId, tree } satisfies FullState) : ({ pointId } satisfies FullState));
      },
      abandon: () => Promise.resolve(),
    };
  },
};

/** Items, entries and logical bytes of a walk, the last two counted as a manifest of it would count them. */
class TreeCount {
  items = 0;
  entries = 0;
  logicalBytes = 0;
  /** dev:ino of files with more than one link already counted */
  private readonly linked = new Set<string>();

  add(it: WalkItem): void {
    this.items++;
    const type = entryType(it.st);
    if (!type) return;
    this.entries++;
    if (type !== 'file') return;
    // A hard link's later names are links in the manifest, not files.
    if (it.st.nlink > 1n) {
      const key = `${it.st.dev}:${it.st.ino}`;
      if (this.linked.has(key)) return;
      this.linked.add(key);
    }
    this.logicalBytes += Number(it.st.size);
  }
}
