/**
 * The qcow2 tracker: persistent dirty bitmaps, read over NBD. The image is backed up as the guest
 * sees it (its virtual disk, fixed 16 KiB chunks, zero chunks as holes), not as qcow2 bytes.
 *
 * Bitmaps are named `holdfast.<source>.<generation>`. The state file says which recovery point
 * the bitmaps lead up to and the generation that started recording at that point's snapshot
 * moment. Invariant: the bitmaps of this source with a generation at or above the state's record
 * every write since that moment, because a new bitmap is always added (recording) before the older
 * ones stop, and old ones are removed only after the state has moved past them. So one sync:
 *
 * 1. snapshot moment (inside the quiesce window): add generation N+1, stop the older ones and
 *    merge them into the oldest (one QMP transaction with image fleecing when QEMU is running);
 * 2. read the slots that the oldest (now frozen) bitmap marks, from the point-in-time view;
 *    the new manifest is the parent's slots with those replaced;
 * 3. committed(): save state (point, N+1), then remove generations below N+1;
 *    abandon(): nothing: the frozen bitmap and N+1 still cover everything since the parent.
 *
 * A crash anywhere leaves the invariant true; the next sync finds the extra generations and merges
 * them. When the state does not lead to the caller's parent point, or a bitmap is missing or was
 * not saved cleanly, the sync reads every allocated slot and compares hashes (tracker 'full').
 */
import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ManifestWriter, PAGE_CHUNKS, pagedSpan, readManifest } from '../../core/manifest-io.js';
import type { FileEntry } from '../../core/manifest.js';
import { HoldfastError, errnoCode } from '../../core/errors.js';
import { NBD_STATE_ZERO } from '../nbd/nbd-protocol.js';
import type { BackupProgress } from '../backup-dir.js';
import { baseMeta, readXattrs } from '../file-meta.js';
import type { BitmapHost } from './bitmap-host.js';
import { LiveBitmapHost } from './bitmap-host-live.js';
import { OfflineBitmapHost } from './bitmap-host-offline.js';
import { ImageSlots, readSlots } from './image-slots.js';
import { loadSlots, saveSlots } from './slot-cache.js';
import { pageCacheOf, trackedParent, type PendingSync, type Tracker, type TrackerContext } from './tracker.js';

interface Qcow2State {
  pointId: string;
  /** the generation that started recording at that point's snapshot moment */
  active: number;
  image: string;
}

export const qcow2BitmapTracker: Tracker = {
  name: 'qcow2-bitmap',
  sync,
};

async function sync(ctx: TrackerContext): Promise<PendingSync> {
  const r = ctx.r;
  const path = resolve(r.source.path);
  let st;
  try {
    st = await stat(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new HoldfastError('PATH_NOT_FOUND', `image ${path} does not exist`, { path });
    throw new HoldfastError('PATH_UNREADABLE', `cannot read image ${path}: ${(err as Error).message}`, { path });
  }
  await mkdir(r.stateDir, { recursive: true, mode: 0o700 });
  // QEMU node names are short; a digest of the source name keeps them unique and valid.
  const tag = createHash('sha256').update(r.source.name).digest('hex').slice(0, 10);
  const prefix = `holdfast.${r.source.name}.`;
  const openHost = async (): Promise<BitmapHost> =>
    r.qemu ? LiveBitmapHost.connect(r.qemu, r.stateDir, tag, r.signal) : new OfflineBitmapHost(path, r.stateDir, tag, r.signal, (m) => warnings.push(m));
  const ours = async (host: BitmapHost): Promise<Array<{ name: string; gen: number; broken: boolean }>> =>
    (await host.bitmaps())
      .filter((b) => b.name.startsWith(prefix))
      .map((b) => ({ ...b, gen: Number(b.name.slice(prefix.length)) }))
      .filter((b) => Number.isSafeInteger(b.gen) && b.gen > 0)
      .sort((a, b) => a.gen - b.gen);

  // The parent's slots as the last commit left them (syncSource leaves the parent to this tracker).
  const cacheFile = join(r.stateDir, `${r.source.name}.qcow2-bitmap.slots`);
  const warnings = ctx.warnings;
  const counters = { readBytes: 0 };
  const progress: BackupProgress = { entries: 0, bytesDone: 0, readBytes: 0 };
  const host = await openHost();
  // Our bitmaps as the sync found them, and those it removed: committed() drops the rest below the new generation.
  let listed: Array<{ name: string; gen: number }> = [];
  const gone = new Set<string>();
  let gen: number;
  let slots: ImageSlots;
  let incremental = false;
  try {
    await host.cleanup();
    const state = await ctx.state.load<Qcow2State>();
    const mine = await ours(host);
    listed = mine;
    const size = await host.virtualSize();
    host.prepare(); // the bitmaps are listed: what rotate() needs may start meanwhile
    let base: ImageSlots | undefined;
    let frozen: string[] = [];
    const t = trackedParent(state?.pointId, r.parent, r.consistencyCheck);
    if (t.ok && state && r.parent) {
      const since = mine.filter((b) => b.gen >= state.active);
      if (since[0]?.gen !== state.active) warnings.push(`dirty bitmap ${prefix}${state.active} is missing from ${path}; reading everything and comparing hashes`);
      else if (since.some((b) => b.broken)) warnings.push(`dirty bitmaps of ${path} were not saved cleanly (QEMU stopped without closing the image); reading everything and comparing hashes`);
      else {
        base = await parentSlots(ctx, cacheFile, size);
        if (!base) warnings.push(`the previous recovery point of ${path} has another size or layout; reading everything and comparing hashes`);
        else {
          frozen = since.map((b) => b.name);
          const leftovers = mine.filter((b) => b.gen < state.active).map((b) => b.name);
          await host.remove(leftovers); // a commit's leftovers
          for (const n of leftovers) gone.add(n);
        }
      }
    } else if (t.why) warnings.push(t.why);
    gen = Math.max(0, state?.active ?? 0, ...mine.map((b) => b.gen)) + 1;
    await ctx.quiesce(() => host.rotate(`${prefix}${gen}`, frozen));
    for (const n of frozen.slice(1)) gone.add(n); // merged into frozen[0] and removed
    incremental = base !== undefined;
    slots = base ?? ImageSlots.empty(size, r.imageChunk);
    const view = await host.open(frozen[0]);
    try {
      const changed = frozen[0]
        ? await view.nbd.dirtyExtents(frozen[0], r.signal)
        : (await view.nbd.blockStatus(0, size, 'base:allocation', r.signal)).filter((e) => (e.flags & NBD_STATE_ZERO) === 0);
      const runs = slots.runsOf(changed);
      await readSlots(
        {
          read: (o, l, s, into) => (view.read ? view.read(o, l, s, into) : view.nbd.read(o, l, s, into)),
          sink: r.sink,
          batcher: r.batcher,
          signal: r.signal,
          counters,
          onRead: (n) => {
            progress.readBytes += n;
            progress.bytesDone += n;
            r.onProgress?.(progress);
          },
        },
        slots,
        runs,
      );
    } finally {
      await view.close();
    }
  } finally {
    await host.close();
  }

  const meta = { path: basename(path), ...baseMeta(st), xattrs: readXattrs(path) };
  if (meta.xattrs === undefined) delete meta.xattrs;
  const manifest = new ManifestWriter(r.sink, 'image', { pageSpan: PAGE_CHUNKS * r.imageChunk, pages: pageCacheOf(r.source.name), parentManifest: r.parent?.manifest });
  const span = pagedSpan(slots.size, PAGE_CHUNKS * r.imageChunk);
  if (span) await manifest.addPaged({ type: 'file', ...meta, size: slots.size }, span, slots.pageSource(span));
  else {
    const { chunks, holes } = slots.content();
    const entry: FileEntry = { type: 'file', ...meta, size: slots.size, chunks };
    if (holes.length > 0) entry.holes = holes;
    await manifest.add(entry);
  }
  const refs = await manifest.finish();
  const newGen = gen;
  // What rotate() left of the generations before this one (it merged all but the oldest away).
  const stale = listed.filter((b) => b.gen < newGen && !gone.has(b.name)).map((b) => b.name);
  return {
    outcome: { manifest: refs, entries: 1, logicalBytes: slots.size, readBytes: counters.readBytes, torn: [], warnings, tracker: incremental ? 'qcow2-bitmap' : 'full' },
    committed: async (pointId) => {
      // Together: the cache is trusted only for the point and manifest it names, whichever lands first.
      await Promise.all([
        saveSlots(cacheFile, { pointId, manifest: refs.map((x) => x[0]), size: slots.size, chunk: slots.chunk }, slots.slots).catch(() => undefined),
        ctx.state.save({ pointId, active: newGen, image: path } satisfies Qcow2State),
      ]);
      const h = await openHost();
      try {
        // Best effort: a generation left here is removed by the next sync.
        for (const name of stale) await h.remove([name]).catch(() => undefined);
      } finally {
        // Returns once the bitmaps are stored and the image is free (for whoever runs next).
        await h.close(true);
      }
    },
    abandon: () => Promise.resolve(),
  };
}

/** The parent point's slots: from the slot cache when it matches the parent exactly, else from its manifest. */
async function parentSlots(ctx: TrackerContext, cacheFile: string, size: number): Promise<ImageSlots | undefined> {
  const r = ctx.r;
  const parent = r.parent;
  if (!parent) return undefined;
  const cached = await loadSlots(cacheFile, { pointId: parent.id, manifest: parent.manifest.map((x) => x[0]), size, chunk: r.imageChunk });
  const fromCache = cached && ImageSlots.fromSlots(size, r.imageChunk, cached);
  if (fromCache) return fromCache;
  let entry: FileEntry | undefined;
  try {
    for await (const e of readManifest(r.chunks, parent.manifest, r.signal)) if (e.type === 'file' && !entry) entry = e;
  } catch (err) {
    ctx.warnings.push(`previous recovery point ${parent.id} is unreadable (${(err as Error).message}); reading everything`);
    return undefined;
  }
  return entry ? ImageSlots.fromEntry(entry, size, r.imageChunk) : undefined;
}
