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
import { basename, resolve } from 'node:path';
import { ManifestWriter } from '../../core/manifest-io.js';
import type { FileEntry } from '../../core/manifest.js';
import { HoldfastError, errnoCode } from '../../core/errors.js';
import { NBD_STATE_ZERO } from '../nbd/nbd-protocol.js';
import type { BackupProgress } from '../backup-dir.js';
import { baseMeta, readXattrs } from '../file-meta.js';
import type { BitmapHost } from './bitmap-host.js';
import { LiveBitmapHost } from './bitmap-host-live.js';
import { OfflineBitmapHost } from './bitmap-host-offline.js';
import { ImageSlots, readSlots } from './image-slots.js';
import { trackedParent, type PendingSync, type Tracker, type TrackerContext } from './tracker.js';

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
    r.qemu ? LiveBitmapHost.connect(r.qemu, r.stateDir, tag, r.signal) : new OfflineBitmapHost(path, r.stateDir, tag, r.signal);
  const ours = async (host: BitmapHost): Promise<Array<{ name: string; gen: number; broken: boolean }>> =>
    (await host.bitmaps())
      .filter((b) => b.name.startsWith(prefix))
      .map((b) => ({ ...b, gen: Number(b.name.slice(prefix.length)) }))
      .filter((b) => Number.isSafeInteger(b.gen) && b.gen > 0)
      .sort((a, b) => a.gen - b.gen);

  const warnings = ctx.warnings;
  const counters = { readBytes: 0 };
  const progress: BackupProgress = { entries: 0, bytesDone: 0, readBytes: 0 };
  const host = await openHost();
  let gen: number;
  let slots: ImageSlots;
  let incremental = false;
  try {
    await host.cleanup();
    const state = await ctx.state.load<Qcow2State>();
    const mine = await ours(host);
    const size = await host.virtualSize();
    const parentEntry: FileEntry | undefined = ctx.parentFiles ? [...ctx.parentFiles.values()][0] : undefined;
    let base: ImageSlots | undefined;
    let frozen: string[] = [];
    const t = trackedParent(state?.pointId, r.parent, r.consistencyCheck);
    if (t.ok && state && parentEntry) {
      const since = mine.filter((b) => b.gen >= state.active);
      if (since[0]?.gen !== state.active) warnings.push(`dirty bitmap ${prefix}${state.active} is missing from ${path}; reading everything and comparing hashes`);
      else if (since.some((b) => b.broken)) warnings.push(`dirty bitmaps of ${path} were not saved cleanly (QEMU stopped without closing the image); reading everything and comparing hashes`);
      else {
        base = ImageSlots.fromEntry(parentEntry, size, r.imageChunk);
        if (!base) warnings.push(`the previous recovery point of ${path} has another size or layout; reading everything and comparing hashes`);
        else {
          frozen = since.map((b) => b.name);
          await host.remove(mine.filter((b) => b.gen < state.active).map((b) => b.name)); // a commit's leftovers
        }
      }
    } else if (t.why) warnings.push(t.why);
    gen = Math.max(0, state?.active ?? 0, ...mine.map((b) => b.gen)) + 1;
    await ctx.quiesce(() => host.rotate(`${prefix}${gen}`, frozen));
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
          read: (o, l, s) => view.nbd.read(o, l, s),
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
    host.close();
  }

  const meta = { path: basename(path), ...baseMeta(st), xattrs: readXattrs(path) };
  if (meta.xattrs === undefined) delete meta.xattrs;
  const { chunks, holes } = slots.content();
  const entry: FileEntry = { type: 'file', ...meta, size: slots.size, chunks };
  if (holes.length > 0) entry.holes = holes;
  const manifest = new ManifestWriter(r.sink, 'image');
  await manifest.add(entry);
  const refs = await manifest.finish();
  const newGen = gen;
  return {
    outcome: { manifest: refs, entries: 1, logicalBytes: slots.size, readBytes: counters.readBytes, torn: [], warnings, tracker: incremental ? 'qcow2-bitmap' : 'full' },
    committed: async (pointId) => {
      await ctx.state.save({ pointId, active: newGen, image: path } satisfies Qcow2State);
      const h = await openHost();
      try {
        // Best effort: a generation left here is removed by the next sync.
        await h.remove((await ours(h)).filter((b) => b.gen < newGen).map((b) => b.name)).catch(() => undefined);
      } finally {
        h.close();
      }
    },
    abandon: () => Promise.resolve(),
  };
}
