/**
 * Restores a recovery point (or one or several entries of it) from a ChunkSource into a target directory or
 * image file. Every chunk is verified before a byte is written; a file whose chunks fail is
 * removed, never left with wrong bytes. No entry can be written outside the target: manifest
 * paths are checked when decoded, and each entry's parent must be a directory this restore made
 * or checked, never a symlink.
 */
import { mkdir, open, readdir, realpath, rm, symlink, link, unlink, lstat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ChunkSource } from '../core/chunk-io.js';
import { readManifest } from '../core/manifest-io.js';
import { chunkOffsets, hasContent, type ChunkRef, type Entry, type FileEntry } from '../core/manifest.js';
import { baseName, compareWalkOrder, isWithin, restoreSelection, ROOT_PATH } from '../core/entry-path.js';
import { HoldfastError, errnoCode, throwIfAborted } from '../core/errors.js';
import { mknod } from '../native/index.js';
import { lstatOrUndefined } from './file-meta.js';
import { applyMetaSync } from '../workers/apply-meta.js';
import { SmallFileWriter } from './small-file-writer.js';
import { SMALL_FILE } from './file-chunker.js';
import type { CodecPool } from '../workers/codec-pool.js';

const WINDOW = 512;
const FILE_BATCHES_IN_FLIGHT = 4;
const BATCH_BYTES = 8 * 1024 * 1024;
const FLUSH_EVERY = 32 * 1024 * 1024;

export interface RestoreProgress {
  entries: number;
  bytes: number;
}

export interface RestoreOptions {
  source: ChunkSource;
  manifest: ChunkRef[];
  kind: 'dir' | 'image';
  target: string;
  subPath?: string;
  /**
   * Several entries instead of one subPath, each restored into TARGET under its own name (one
   * job: checked and written together, so no entry can find the target filled by another).
   */
  subPaths?: string[];
  overwrite: boolean;
  /**
   * Restore the one selected entry (subPath) under this name, into TARGET, an existing directory
   * reached without symbolic links, where the name must not exist yet (restore beside the original).
   */
  rename?: string;
  /** whose the restored entries become, set-ID bits dropped (absent: as recorded) */
  owner?: { uid: number; gid: number };
  signal?: AbortSignal;
  onProgress?: (p: RestoreProgress) => void;
  /** what the restore is of, for messages */
  label: string;
  codec: CodecPool;
  /**
   * Write large files back to disk while the rest arrives (fdatasync every FLUSH_EVERY bytes, not
   * waited for until the file is closed): a database started on the copy fsyncs its whole data
   * directory first, which then finds little left to write.
   */
  flush?: boolean;
  /**
   * Largest single write (RangeWriteItem.maxWrite): a database's copy, which it will write 8 KiB at
   * a time, goes in small pieces so the page cache keeps small folios.
   */
  writeSize?: number;
}

export interface RestoreOutcome {
  entries: number;
  bytes: number;
  target: string;
  warnings: string[];
}

async function isEmptyDir(p: string): Promise<boolean> {
  return (await readdir(p)).length === 0;
}

/** Where an image restore writes: TARGET itself, or TARGET/<name> when TARGET is a directory. */
async function imageDestination(target: string, name: string, overwrite: boolean): Promise<string> {
  const st = await lstatOrUndefined(target);
  const dest = st?.isDirectory() ? join(target, name) : target;
  const existing = dest === target ? st : await lstatOrUndefined(dest);
  if (existing && !overwrite) throw new HoldfastError('TARGET_NOT_EMPTY', `restore target ${dest} already exists (use --overwrite to replace it)`, { target: dest });
  if (existing && existing.isDirectory()) throw new HoldfastError('BAD_ARGUMENT', `restore target ${dest} is a directory`, { target: dest });
  // A new file in a folder that does not exist yet: the folder is made, as a dir restore makes its target.
  if (!st) await mkdir(dirname(dest), { recursive: true, mode: 0o700 });
  return dest;
}

async function checkDirTarget(target: string, overwrite: boolean): Promise<void> {
  const st = await lstatOrUndefined(target);
  if (!st) return;
  if (!st.isDirectory()) throw new HoldfastError('BAD_ARGUMENT', `restore target ${target} exists and is not a directory`, { target });
  if (!overwrite && !(await isEmptyDir(target))) throw new HoldfastError('TARGET_NOT_EMPTY', `restore target ${target} is not empty (use --overwrite to restore into it)`, { target });
}

/** Restoring beside the original: a plain new name in an existing directory, no links on the way. */
async function checkRenameTarget(target: string, sub: string, name: string, kind: 'dir' | 'image'): Promise<void> {
  if (kind !== 'dir' || sub === ROOT_PATH) throw new HoldfastError('BAD_ARGUMENT', 'a new name needs one path inside a directory source');
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new HoldfastError('UNSAFE_PATH', `'${name}' is not a plain file name`, { path: name });
  const st = await lstatOrUndefined(target);
  if (!st?.isDirectory()) throw new HoldfastError('BAD_ARGUMENT', `restore target ${target} is not an existing directory`, { target });
  // A directory swapped for a link since the point must not send the restore elsewhere.
  if ((await realpath(target)) !== target) throw new HoldfastError('UNSAFE_PATH', `restore target ${target} is reached through a symbolic link`, { target });
  if (await lstatOrUndefined(join(target, name))) throw new HoldfastError('TARGET_NOT_EMPTY', `${join(target, name)} already exists`, { target: join(target, name) });
}

/** Removes whatever is at p unless it is of the wanted kind (with --overwrite only). */
async function clearFor(p: string, want: 'dir' | 'file' | 'other'): Promise<void> {
  const st = await lstatOrUndefined(p);
  if (!st) return;
  if (want === 'dir' && st.isDirectory()) return;
  if (want === 'file' && st.isFile()) {
    await unlink(p); // a fresh inode: never write through another hard link
    return;
  }
  await rm(p, { recursive: true, force: true });
}

export async function restore(o: RestoreOptions): Promise<RestoreOutcome> {
  const target = resolve(o.target);
  const subs = o.subPaths !== undefined ? restoreSelection(o.subPaths) : [o.subPath ?? ROOT_PATH];
  const sub = subs[0] ?? ROOT_PATH;
  if (subs.length > 1 && (o.kind !== 'dir' || o.rename !== undefined)) throw new HoldfastError('BAD_ARGUMENT', 'several paths are restored from a directory tree, each under its own name');
  const warnings: string[] = [];
  const progress: RestoreProgress = { entries: 0, bytes: 0 };
  if (o.rename !== undefined) await checkRenameTarget(target, sub, o.rename, o.kind);
  else if (o.kind === 'dir') await checkDirTarget(target, o.overwrite);

  const verifiedDirs = new Set<string>([ROOT_PATH]);
  const dirEntries: Array<{ e: Entry; abs: string }> = [];
  const written = new Map<string, Promise<string | undefined>>(); // entry path -> absolute path once written
  const window: Array<Promise<unknown>> = [];
  let imageDest: string | undefined;
  const matched = subs.map(() => false);
  let targetReady = false;

  const ensureTarget = async (): Promise<void> => {
    if (targetReady) return;
    targetReady = true;
    if (o.kind === 'dir') await mkdir(target, { recursive: true, mode: 0o700 });
  };

  /**
   * The restore-relative path of an entry, or undefined when outside the selection. The chosen
   * entries are in walk order and none lies inside another, so each is one contiguous run of
   * the walk: `current` moves past a run once an entry after it shows up.
   */
  let current = 0;
  const relOf = (p: string): string | undefined => {
    for (; current < subs.length; current++) {
      const s = subs[current] as string;
      if (isWithin(p, s)) {
        matched[current] = true;
        if (s === ROOT_PATH) return p;
        const top = o.rename ?? baseName(s);
        return p === s ? top : top + p.slice(s.length);
      }
      if (compareWalkOrder(p, s) < 0) return undefined; // before this run
    }
    return undefined;
  };

  const absOf = async (rel: string, e: Entry): Promise<string> => {
    if (o.kind === 'image') {
      imageDest ??= await imageDestination(target, baseName(e.path), o.overwrite);
      return imageDest;
    }
    if (rel === ROOT_PATH) return target;
    const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : ROOT_PATH;
    if (!verifiedDirs.has(parent)) {
      throw new HoldfastError('UNSAFE_PATH', `${o.label}: entry ${e.path} does not follow a directory entry for its parent; refusing to restore it`, { path: e.path });
    }
    const abs = join(target, rel);
    if (!abs.startsWith(`${target}/`)) throw new HoldfastError('UNSAFE_PATH', `${o.label}: entry ${e.path} would leave the restore target`, { path: e.path });
    return abs;
  };

  const small = new SmallFileWriter(o.source, o.codec, o.label, o.signal, o.writeSize);
  /** Writes a file's content; small files get their metadata too (returns true then). */
  const writeContent = async (e: FileEntry, abs: string): Promise<boolean> => {
    if (o.overwrite) await clearFor(abs, 'file');
    if (e.size <= SMALL_FILE) {
      warnings.push(...(await small.write(e, abs)));
      progress.bytes += e.size;
      return true;
    }
    const fh = await open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    // Batches are fetched, verified and written concurrently: writes are positional.
    const inFlight = new Set<Promise<void>>();
    // A worker verifies each batch and writes it with pwrite: the plaintext never comes back to
    // this thread, which keeps it (and its garbage collector) out of the data path.
    const writeBatch = async (batch: Array<{ ref: ChunkRef; offset: number }>, bytes: number): Promise<void> => {
      const stored = await o.source.readEncoded(batch.map((b) => b.ref), o.signal);
      // Spelled out, not spread: a spread per chunk was 3% of an image restore's main thread.
      const pieces = stored.map((s, i) => ({ data: s.data, flags: s.flags, length: s.length, digest: s.digest, offset: (batch[i] as { offset: number }).offset }));
      const r = await o.codec.writeAt({ fd: fh.fd, pieces, ...(o.writeSize ? { maxWrite: o.writeSize } : {}) });
      if (!r.ok) {
        if (r.code === 'CHUNK_CORRUPT') throw new HoldfastError('CHUNK_CORRUPT', `${o.label}: ${e.path}: ${r.message}`, { path: e.path });
        throw Object.assign(new Error(`${abs}: ${r.message}`), { code: r.code });
      }
      progress.bytes += bytes;
      unflushed += bytes;
      if (o.flush && unflushed >= FLUSH_EVERY && !flushing) {
        unflushed = 0;
        flushing = fh.datasync().finally(() => (flushing = undefined));
        flushing.catch(() => undefined); // awaited before the file is closed
      }
    };
    let unflushed = 0;
    let flushing: Promise<void> | undefined;
    try {
      let batch: Array<{ ref: ChunkRef; offset: number }> = [];
      let bytes = 0;
      const flush = async (): Promise<void> => {
        if (batch.length === 0) return;
        const task = writeBatch(batch, bytes);
        task.catch(() => undefined); // observed below
        inFlight.add(task);
        void task.finally(() => inFlight.delete(task)).catch(() => undefined);
        batch = [];
        bytes = 0;
        while (inFlight.size >= FILE_BATCHES_IN_FLIGHT) await Promise.race(inFlight);
      };
      for (const c of chunkOffsets(e)) {
        throwIfAborted(o.signal);
        batch.push(c);
        bytes += c.ref[1];
        if (bytes >= BATCH_BYTES) await flush();
      }
      await flush();
      await Promise.all(inFlight);
      // A trailing hole; earlier holes are left by writing past them.
      if (e.holes?.some(([off, len]) => off + len === e.size)) await fh.truncate(e.size);
      await flushing;
    } catch (err) {
      await Promise.allSettled(inFlight);
      await flushing?.catch(() => undefined);
      await fh.close().catch(() => undefined);
      await unlink(abs).catch(() => undefined);
      throw err;
    }
    await fh.close();
    return false;
  };

  const restoreEntry = async (e: Entry, abs: string): Promise<void> => {
    switch (e.type) {
      case 'file':
        if (await writeContent(e, abs)) {
          progress.entries++;
          return;
        }
        break;
      case 'hardlink': {
        const first = written.get(e.target);
        const firstAbs = first ? await first : undefined;
        if (firstAbs) {
          if (o.overwrite) await clearFor(abs, 'other');
          await link(firstAbs, abs);
          progress.entries++;
          return; // shares the first name's inode and metadata
        }
        if (await writeContent(e, abs)) {
          progress.entries++; // its first name is outside the selection
          return;
        }
        break;
      }
      case 'symlink':
        if (o.overwrite) await clearFor(abs, 'other');
        await symlink(e.target, abs);
        break;
      case 'fifo':
      case 'socket':
      case 'chardev':
      case 'blockdev': {
        if (o.overwrite) await clearFor(abs, 'other');
        const typeBits = { fifo: constants.S_IFIFO, socket: constants.S_IFSOCK, chardev: constants.S_IFCHR, blockdev: constants.S_IFBLK }[e.type];
        try {
          mknod(abs, typeBits | e.mode, 'rdev' in e ? e.rdev : 0);
        } catch (err) {
          if (errnoCode(err) === 'EPERM') {
            warnings.push(`${e.path}: ${e.type} not restored (needs root)`);
            return;
          }
          throw err;
        }
        break;
      }
      case 'dir':
        return;
    }
    applyMetaSync(abs, e, warnings);
    progress.entries++;
  };

  let previous: string | undefined;
  for await (const recorded of readManifest(o.source, o.manifest, o.signal)) {
    const e: Entry = o.owner ? { ...recorded, uid: o.owner.uid, gid: o.owner.gid, mode: recorded.mode & ~0o6000 } : recorded;
    // Strictly increasing walk order: no path twice, no child before its parent.
    if (previous !== undefined && compareWalkOrder(previous, e.path) >= 0) {
      throw new HoldfastError('UNSAFE_PATH', `${o.label}: entry ${e.path} is out of order or repeated after ${previous}; refusing to restore it`, { path: e.path });
    }
    previous = e.path;
    const rel = relOf(e.path);
    if (rel === undefined) {
      if (current >= subs.length) break; // past the last chosen run
      continue;
    }
    await ensureTarget();
    const abs = await absOf(rel, e);
    if (e.type === 'dir') {
      if (rel !== ROOT_PATH) {
        if (o.overwrite) await clearFor(abs, 'dir');
        try {
          await mkdir(abs, { mode: 0o700 });
        } catch (err) {
          if (errnoCode(err) !== 'EEXIST') throw err;
          if (!(await lstat(abs)).isDirectory()) throw new HoldfastError('UNSAFE_PATH', `${o.label}: ${abs} exists and is not a directory`, { path: e.path });
        }
      }
      verifiedDirs.add(rel);
      dirEntries.push({ e, abs });
      continue;
    }
    const task = restoreEntry(e, abs);
    if (hasContent(e)) {
      const done = task.then(
        () => abs,
        () => undefined,
      );
      written.set(e.path, done);
      // A link group whose first name is outside the selection: the first name restored stands in.
      if (e.type === 'hardlink' && !written.has(e.target)) written.set(e.target, done);
    }
    task.catch(() => undefined);
    window.push(task);
    if (window.length >= WINDOW) await window.shift();
    o.onProgress?.(progress);
  }
  try {
    for (const t of window) await t;
  } finally {
    await Promise.allSettled(window);
  }
  // Directory metadata last, deepest first, so restoring children does not disturb their times.
  for (let i = dirEntries.length - 1; i >= 0; i--) {
    const d = dirEntries[i] as { e: Entry; abs: string };
    if (!(await lstat(d.abs)).isDirectory()) throw new HoldfastError('UNSAFE_PATH', `${o.label}: ${d.abs} is no longer a directory`, { path: d.e.path });
    applyMetaSync(d.abs, d.e, warnings);
    progress.entries++;
  }
  const missing = subs.filter((_, i) => !matched[i]);
  if (missing.length > 0) {
    const what = missing.map((m) => `'${m}'`).join(', ');
    throw new HoldfastError('PATH_NOT_FOUND', sub === ROOT_PATH ? `${o.label} is empty` : `${o.label} has no path ${what}`, { path: missing[0] });
  }
  o.onProgress?.(progress);
  return { entries: progress.entries, bytes: progress.bytes, target: imageDest ?? target, warnings };
}

