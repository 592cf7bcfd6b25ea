/**
 * A dir source's manifest from its change journal: only the journal's paths are looked at (each
 * stat'ed; a changed directory listed, and a directory that appeared walked whole), every other
 * object keeps the parent point's entry, and the merged list is written in walk order, so the
 * manifest is complete and byte-identical to what a full walk would give for the same tree.
 *
 * A changed file is read as a full walk reads it (small: whole, in a worker; large: content-
 * defined chunks, of which only the chunks the pool lacks travel). A file inside a moved
 * directory keeps its parent entry, found by inode, when its size and times say it is untouched.
 *
 * Hard links: a write through one name raises an event under that name only (or under none, for
 * a name outside the source), so every file known to have several links is re-stat'ed each sync
 * and the links are regrouped from fresh stats: the first name in walk order holds the content.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { BigIntStats } from 'node:fs';
import { errnoCode } from '../../core/errors.js';
import { joinEntryPath, ROOT_PATH } from '../../core/entry-path.js';
import { ManifestWriter } from '../../core/manifest-io.js';
import { hasContent, type Entry, type FileEntry } from '../../core/manifest.js';
import { readXattrs } from '../../workers/xattrs.js';
import { unchanged, type BackupOutcome, type BackupProgress } from '../backup-dir.js';
import { baseMeta, entryType } from '../file-meta.js';
import { chunkFile, chunkSmallFile, SMALL_FILE, type ChunkingContext } from '../file-chunker.js';
import type { ChangeJournal } from '../journal.js';
import type { SyncRequest } from './tracker.js';

/** Objects stat'ed or read at once. */
const PARALLEL = 32;

export interface JournalBackupInput {
  r: SyncRequest;
  /** the parent point's entries, in walk order */
  parent: Entry[];
  /** the parent's files by path (content-bearing hard links as files) */
  parentFiles: Map<string, FileEntry>;
  journal: ChangeJournal;
  /** files known to have several links */
  linked: Set<string>;
}

export interface JournalBackupOutcome extends BackupOutcome {
  /** files seen with several links now */
  linked: Set<string>;
  /** the entries written, in walk order, when they hold at most KEEP_MAX_ITEMS entries and chunk references */
  written?: Entry[];
}

/** Entries plus chunk references of a manifest whose entries are handed back (~25 MB at most). */
export const KEEP_MAX_ITEMS = 1 << 17;

/** The entries a sync writes, in order, while they hold at most KEEP_MAX_ITEMS entries and references. */
export class WrittenEntries {
  entries: Entry[] | undefined = [];
  private items = 0;

  add(e: Entry): void {
    this.items += 1 + (hasContent(e) ? e.chunks.length : 0);
    if (this.items > KEEP_MAX_ITEMS) this.entries = undefined;
    this.entries?.push(e);
  }
}

/** Walk order: a directory before its children, names compared as the walker sorts them ('/' ends a name). */
export function walkOrder(a: string, b: string): number {
  if (a === b) return 0;
  if (a === ROOT_PATH) return -1;
  if (b === ROOT_PATH) return 1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === 47) return -1;
    if (y === 47) return 1;
    return x - y;
  }
  return a.length - b.length;
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? ROOT_PATH : p.slice(0, i);
}

interface Fresh {
  entry: Entry;
  st: BigIntStats;
}

export async function journalBackup(o: JournalBackupInput): Promise<JournalBackupOutcome> {
  const r = o.r;
  const root = resolve(r.source.path);
  const exclude = (r.exclude ?? []).map((p) => resolve(p));
  const isExcluded = (rel: string): boolean => {
    const abs = rel === ROOT_PATH ? root : join(root, rel);
    return exclude.some((x) => abs === x || abs.startsWith(`${x}/`));
  };
  const warnings: string[] = [];
  const torn: string[] = [];
  const counters = { readBytes: 0 };
  const ctx: ChunkingContext = { sink: r.sink, batcher: r.batcher, cdc: r.cdc, imageChunk: r.imageChunk, signal: r.signal, counters };

  const before = new Map<string, Entry>(o.parent.map((e) => [e.path, e]));
  const children = new Map<string, string[]>();
  for (const e of o.parent) {
    if (e.path === ROOT_PATH) continue;
    const d = parentOf(e.path);
    let list = children.get(d);
    if (!list) children.set(d, (list = []));
    list.push(e.path);
  }
  let byIno: Map<number, FileEntry> | undefined;
  const prevByIno = (ino: number): FileEntry | undefined => {
    byIno ??= new Map([...o.parentFiles.values()].filter((f) => f.ino !== undefined).map((f) => [f.ino as number, f]));
    return byIno.get(ino);
  };

  /** path → its entry now (null: gone) */
  const fresh = new Map<string, Fresh | null>();
  /** paths whose parent-point descendants are void (a directory gone, replaced or walked whole) */
  const voided = new Set<string>();
  /**
   * Each path is looked at once. 'whole' (walk a directory's every name, find moved files by
   * inode) may arrive after a plain visit began: a directory is then visited again.
   */
  const seen = new Map<string, { whole: boolean; state: 'queued' | 'running' | 'done'; again?: boolean }>();
  const queue: string[] = [];
  const push = (rel: string, whole: boolean): void => {
    const s = seen.get(rel);
    if (!s) {
      if (isExcluded(rel)) return;
      seen.set(rel, { whole, state: 'queued' });
      queue.push(rel);
      return;
    }
    if (!whole || s.whole) return;
    s.whole = true;
    if (s.state === 'running') s.again = true;
    else if (s.state === 'done' && fresh.get(rel)?.entry.type === 'dir') {
      s.state = 'queued';
      queue.push(rel);
    }
  };
  for (const s of o.journal.subtrees) push(s, true);
  for (const p of o.journal.paths) push(p, false);
  for (const p of o.linked) push(p, false);
  for (const e of o.parent) {
    if (e.type === 'hardlink') {
      push(e.path, false);
      push(e.target, false);
    }
  }

  const fileEntry = async (abs: string, rel: string, st: BigIntStats, meta: Omit<FileEntry, 'type' | 'size' | 'chunks'>, moved: boolean): Promise<FileEntry | undefined> => {
    const ino = Number(st.ino);
    const prev = o.parentFiles.get(rel) ?? (moved ? prevByIno(ino) : undefined);
    if (unchanged(prev, st.size, st.mtimeNs, st.ctimeNs, st.ino)) return { ...prev, ...meta, type: 'file' };
    try {
      if (st.size <= BigInt(SMALL_FILE) && st.blocks * 512n >= st.size) {
        const small = await chunkSmallFile(ctx, abs, st);
        if (small) return { type: 'file', ...meta, size: Number(st.size), ino, chunks: small.chunks };
      }
      const c = await chunkFile(ctx, abs, 'cdc');
      if (c.torn) torn.push(rel);
      const e: FileEntry = { type: 'file', ...meta, ...baseMeta(c.stat), size: c.size, ino: Number(c.stat.ino), chunks: c.chunks };
      if (c.holes.length > 0) e.holes = c.holes;
      if (c.torn) e.torn = true;
      return e;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return undefined; // deleted since the stat: the next journal has it
      if (code === 'EACCES' || code === 'EPERM' || code === 'ELOOP' || code === 'EIO') {
        warnings.push(`${rel}: not readable (${code}); not in this recovery point`);
        return undefined;
      }
      throw err;
    }
  };

  const linkReads = new Map<string, Promise<FileEntry | undefined>>();
  const visit = async (rel: string, whole: boolean): Promise<void> => {
    const abs = rel === ROOT_PATH ? root : join(root, rel);
    let st: BigIntStats;
    try {
      st = await lstat(abs, { bigint: true });
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      fresh.set(rel, null);
      voided.add(rel);
      return;
    }
    const type = entryType(st);
    if (!type) return;
    const meta = { path: rel, ...baseMeta(st), xattrs: readXattrs(abs) };
    if (meta.xattrs === undefined) delete meta.xattrs;
    let entry: Entry | undefined;
    switch (type) {
      case 'dir':
      case 'fifo':
      case 'socket':
        entry = { type, ...meta };
        break;
      case 'chardev':
      case 'blockdev':
        entry = { type, ...meta, rdev: Number(st.rdev) };
        break;
      case 'symlink':
        entry = { type, ...meta, target: await readlink(abs) };
        break;
      case 'file': {
        // Several names of one changed inode: read it once.
        const key = `${st.dev}:${st.ino}`;
        const same = st.nlink > 1n ? linkReads.get(key) : undefined;
        if (same) {
          const e = await same;
          entry = e ? { ...e, ...meta } : undefined;
        } else {
          const work = fileEntry(abs, rel, st, meta, whole);
          if (st.nlink > 1n) linkReads.set(key, work);
          entry = await work;
        }
        break;
      }
    }
    if (!entry) {
      fresh.set(rel, null);
      return;
    }
    fresh.set(rel, { entry, st });
    if (type !== 'dir') {
      voided.add(rel); // was it a directory before? its old children are gone
      return;
    }
    // A changed directory is listed: names the parent point lacks are new (walked whole), names
    // it had and the directory lacks now are gone. Walked whole, every name is looked at.
    let names: string[];
    try {
      names = await readdir(abs);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return; // replaced since the stat: the next journal has it
      warnings.push(`${rel}: directory not readable (${code ?? 'error'}); its contents are not in this recovery point`);
      voided.add(rel);
      return;
    }
    const now = new Set(names.map((n) => joinEntryPath(rel, n)));
    const had = before.get(rel)?.type === 'dir' ? (children.get(rel) ?? []) : [];
    if (whole || before.get(rel)?.type !== 'dir') voided.add(rel);
    for (const c of had) {
      if (!now.has(c)) {
        fresh.set(c, null);
        voided.add(c);
      }
    }
    const known = new Set(had);
    for (const c of now) if (whole || !known.has(c)) push(c, true);
  };

  // A small pool of workers drains the queue, which grows as directories are listed.
  let active = 0;
  let failure: Error | undefined;
  const drain = (): Promise<void> => new Promise<void>((done) => {
    const next = (): void => {
      while (failure === undefined && active < PARALLEL && queue.length > 0) {
        const rel = queue.shift() as string;
        const s = seen.get(rel) as { whole: boolean; state: string; again?: boolean };
        s.state = 'running';
        active++;
        visit(rel, s.whole).then(
          () => {
            active--;
            s.state = 'done';
            if (s.again && fresh.get(rel)?.entry.type === 'dir') {
              s.again = false;
              s.state = 'queued';
              queue.push(rel);
            }
            next();
          },
          (err: unknown) => {
            active--;
            failure ??= err instanceof Error ? err : new Error(String(err));
            next();
          },
        );
      }
      if (active === 0 && (queue.length === 0 || failure !== undefined)) done();
    };
    next();
  });
  await drain();
  // A name that gained a link (or lost one) changed its inode's link count and ctime, but only the
  // new name raised an event: look again at every other name of those inodes.
  const multi = new Set<number>();
  for (const f of fresh.values()) if (f && f.entry.type === 'file' && f.st.nlink > 1n) multi.add(Number(f.st.ino));
  for (const e of o.parent) if ((e.type === 'file' || e.type === 'hardlink') && !fresh.has(e.path) && e.ino !== undefined && multi.has(e.ino)) push(e.path, false);
  await drain();
  if (failure !== undefined) throw failure;

  return assemble(o, fresh, voided, r, ctx, warnings, torn);
}

/** Parent entries not looked at, plus fresh ones, in walk order, with hard links regrouped. */
async function assemble(
  o: JournalBackupInput,
  fresh: Map<string, Fresh | null>,
  voided: Set<string>,
  r: SyncRequest,
  ctx: ChunkingContext,
  warnings: string[],
  torn: string[],
): Promise<JournalBackupOutcome> {
  const underVoided = (p: string): boolean => {
    for (let d = p; d !== ROOT_PATH; ) {
      d = parentOf(d);
      if (voided.has(d)) return true;
    }
    return false;
  };
  const paths: string[] = [];
  for (const e of o.parent) if (!fresh.has(e.path) && !underVoided(e.path)) paths.push(e.path);
  for (const [p, f] of fresh) if (f) paths.push(p);
  paths.sort(walkOrder);

  const before = new Map<string, Entry>(o.parent.map((e) => [e.path, e]));
  const manifest = new ManifestWriter(r.sink, 'dir');
  const dirs = new Set<string>();
  const firstOfInode = new Map<string, FileEntry>();
  const linked = new Set<string>();
  let logicalBytes = 0;
  let last = '';
  const written = new WrittenEntries();
  for (const p of paths) {
    if (p === last) continue; // a path both kept and fresh cannot happen, but never write it twice
    last = p;
    const f = fresh.get(p);
    let e = f ? f.entry : (before.get(p) as Entry);
    // An object whose directory is gone or replaced since it was stat'ed: the next journal has both.
    if (p !== ROOT_PATH && !dirs.has(parentOf(p))) continue;
    if (f && f.entry.type === 'file' && f.st.nlink > 1n) {
      linked.add(p);
      const key = `${f.st.dev}:${f.st.ino}`;
      const first = firstOfInode.get(key);
      if (first) e = { ...first, path: p, type: 'hardlink', target: first.path };
      else firstOfInode.set(key, f.entry);
    }
    if (e.type === 'dir') dirs.add(p);
    if (e.type === 'file') logicalBytes += e.size;
    await manifest.add(e);
    written.add(e);
    const progress: BackupProgress = { entries: manifest.entries, bytesDone: logicalBytes, readBytes: ctx.counters.readBytes };
    r.onProgress?.(progress);
  }
  const refs = await manifest.finish();
  return { manifest: refs, entries: manifest.entries, logicalBytes, readBytes: ctx.counters.readBytes, torn, warnings, linked, written: written.entries };
}
