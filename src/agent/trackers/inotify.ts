/**
 * The 'inotify' tracker of dir sources: the agent's in-memory change journal
 * (`journal-watcher.ts`) says which paths changed since the parent point, and only those are
 * looked at (`inotify-merge.ts`). No snapshot: the sync's snapshot moment is the journal's
 * rotation, and pre/post commands and fsfreeze span the whole read, as with 'full'.
 *
 * Generations: each sync closes the journal's current generation and starts a new one at once,
 * so a write that lands during the sync is in the next generation (and maybe in this point too).
 * committed() saves the state (point, new generation) and drops the old generation; abandon()
 * gives it back to the journal. A generation is trusted only if the state names it for the
 * caller's parent point — a restarted agent (clean or not) has a new run, so its first sync is a
 * consistency check — and nothing broke it (queue overflow, watch limit); otherwise this is a
 * consistency check: read everything, compare with the parent, report 'full' and say why.
 */
import { resolve } from 'node:path';
import { readManifest } from '../../core/manifest-io.js';
import { asFile, type Entry, type FileEntry } from '../../core/manifest.js';
import { backupDir, type BackupOutcome } from '../backup-dir.js';
import { changeJournals } from '../journal-registry.js';
import { journalBackup, WrittenEntries } from './inotify-merge.js';
import { manifestKey, trackedParent, type PendingSync, type Tracker, type TrackerContext } from './tracker.js';

interface InotifyState {
  pointId: string;
  /** the journal generation that started at that point's snapshot moment */
  generation: string;
  /** that point's counts: an empty journal gives the same manifest, and these with it */
  entries?: number;
  logicalBytes?: number;
}

interface ParentEntries {
  entries: Entry[];
  files: Map<string, FileEntry>;
}

/**
 * The entries of the point each source last committed through its journal in this process: the
 * next journal sync takes its parent from here instead of reading the parent's manifest back
 * from the server (20,000 files: ~0.2 s of the agent's main thread, and the server's reads).
 * Trusted only for the exact manifest they were written as; a sync that found nothing changed
 * commits the same manifest, so they stay good.
 */
const committedEntries = new Map<string, { manifest: string; parent: ParentEntries }>();

export const inotifyTracker: Tracker = {
  name: 'inotify',
  sync,
};

async function sync(ctx: TrackerContext): Promise<PendingSync> {
  const r = ctx.r;
  const watcher = changeJournals.get(r.source.name, r.source.path);
  const state = await ctx.state.load<InotifyState>();
  let incremental = false;
  let rotated: ReturnType<NonNullable<typeof watcher>['rotate']> | undefined;
  /** the entries a journal sync wrote, for the next sync's parent */
  let written: Entry[] | undefined;
  const read = (): Promise<BackupOutcome> => ctx.quiesce(async (): Promise<BackupOutcome> => {
    rotated = watcher?.rotate();
    const t = trackedParent(state?.pointId, r.parent, r.consistencyCheck);
    let why = t.why;
    if (t.ok && !watcher) why = `no change journal runs for source '${r.source.name}'; consistency check: reading everything and comparing with recovery point ${r.parent?.id}`;
    else if (t.ok && rotated?.previous.id !== state?.generation) {
      why = `the change journal of source '${r.source.name}' did not run continuously since recovery point ${r.parent?.id} (the agent restarted, or the journal is new); consistency check: reading everything and comparing`;
    } else if (t.ok && rotated?.previous.broken !== undefined) {
      why = `the change journal of source '${r.source.name}' lost track: ${rotated.previous.broken}; consistency check: reading everything and comparing`;
    }
    if (why) ctx.warnings.push(why);
    const trusted = t.ok && !why && watcher !== undefined && rotated !== undefined && r.tracker !== 'full';
    // Nothing changed since the parent (and no multi-link file to re-check): its manifest is this
    // point's, and the parent need not even be read.
    const j = rotated?.previous;
    if (trusted && j && r.parent && j.paths.size === 0 && j.subtrees.size === 0 && watcher.linked.size === 0 && state?.entries !== undefined) {
      incremental = true;
      return { manifest: r.parent.manifest, entries: state.entries, logicalBytes: state.logicalBytes ?? 0, readBytes: 0, torn: [], warnings: [] };
    }
    const parent = await readParent(ctx);
    if (!trusted || !j || !parent) {
      // A consistency check's entries serve the next journal sync as well.
      const kept = new WrittenEntries();
      const out = await backupDir({
        root: r.source.path,
        sink: r.sink,
        batcher: r.batcher,
        cdc: r.cdc,
        imageChunk: r.imageChunk,
        parent: parent?.files,
        exclude: r.exclude,
        verifyContent: r.consistencyCheck === 'heavy',
        signal: r.signal,
        onProgress: r.onProgress,
        onWritten: (e) => kept.add(e),
      });
      written = kept.entries;
      return out;
    }
    const { linked, written: w, ...out } = await journalBackup({ r, parent: parent.entries, parentFiles: parent.files, journal: j, linked: watcher.linked });
    watcher.linked = linked;
    written = w;
    incremental = true;
    return out;
  });
  let outcome: BackupOutcome;
  try {
    outcome = await read();
  } catch (err) {
    // The sync failed after the rotation: the closed generation's changes must not be lost.
    if (rotated && watcher && !watcher.closed) watcher.giveBack(rotated.previous);
    throw err;
  }
  return {
    outcome: { ...outcome, warnings: [...ctx.warnings, ...outcome.warnings], tracker: incremental ? 'inotify' : 'full' },
    committed: async (pointId) => {
      // Without a journal there is nothing to lead anywhere: leave no state that could be trusted.
      if (rotated) await ctx.state.save({ pointId, generation: rotated.next, entries: outcome.entries, logicalBytes: outcome.logicalBytes } satisfies InotifyState);
      else await ctx.state.clear();
      if (written) committedEntries.set(r.source.name, { manifest: manifestKey(outcome.manifest), parent: { entries: written, files: filesOf(written) } });
      else if (committedEntries.get(r.source.name)?.manifest !== manifestKey(outcome.manifest)) committedEntries.delete(r.source.name);
    },
    abandon: () => {
      if (rotated && watcher && !watcher.closed) watcher.giveBack(rotated.previous);
      return Promise.resolve();
    },
  };
}

/**
 * The parent point's entries in walk order and its files by path, from one read (syncSource
 * leaves the parent to this tracker, which often needs none of it); undefined, with a warning,
 * when there is no parent or it cannot be read.
 */
async function readParent(ctx: TrackerContext): Promise<ParentEntries | undefined> {
  const parent = ctx.r.parent;
  if (!parent) return undefined;
  const kept = committedEntries.get(ctx.r.source.name);
  if (kept && kept.manifest === manifestKey(parent.manifest)) return kept.parent;
  try {
    const entries: Entry[] = [];
    for await (const e of readManifest(ctx.r.chunks, parent.manifest, ctx.r.signal)) entries.push(e);
    return { entries, files: filesOf(entries) };
  } catch (err) {
    ctx.warnings.push(`previous recovery point ${parent.id} is unreadable (${(err as Error).message}); reading every file`);
    return undefined;
  }
}

/** The files among entries by path (a content-bearing hard link as a file). */
function filesOf(entries: Entry[]): Map<string, FileEntry> {
  const files = new Map<string, FileEntry>();
  for (const e of entries) {
    const f = asFile(e);
    if (f) files.set(e.path, f);
  }
  return files;
}

/** True when `path` is the root of a running journal for `name` (what 'auto' asks). */
export function hasJournal(name: string, path: string): boolean {
  return changeJournals.get(name, resolve(path)) !== undefined;
}
