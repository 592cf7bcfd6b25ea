/**
 * Walks a directory tree in manifest order: a directory before its children, names sorted, so
 * two walks of the same tree produce the same manifest stream (and so dedup against each other).
 */
import { lstat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import type { CodecPool, DirListing } from '../workers/codec-pool.js';
import { isDirStat, readXattrs, type StatLike } from './file-meta.js';
import { join } from 'node:path';
import { HoldfastError, errnoCode, throwIfAborted } from '../core/errors.js';
import { joinEntryPath, ROOT_PATH } from '../core/entry-path.js';
import { StatView, statErrno } from '../native/stat-view.js';

export interface WalkItem {
  rel: string;
  abs: string;
  st: StatLike;
  /** read with the stat when the walk ran in a worker; undefined means none */
  xattrs?: Record<string, string>;
}


export async function* walkTree(root: string, opts: WalkOptions): AsyncGenerator<WalkItem> {
  let rootSt: BigIntStats;
  try {
    rootSt = await lstat(root, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new HoldfastError('PATH_NOT_FOUND', `source path ${root} does not exist`, { path: root });
    throw new HoldfastError('PATH_UNREADABLE', `cannot read source path ${root}: ${(err as Error).message}`, { path: root });
  }
  if (!rootSt.isDirectory()) throw new HoldfastError('BAD_ARGUMENT', `source path ${root} is not a directory (use --kind image for an image file)`, { path: root });
  yield { rel: ROOT_PATH, abs: root, st: rootSt, xattrs: readXattrs(root) };
  yield* walkDir(root, ROOT_PATH, opts, true);
}

interface Listing {
  rel: string;
  entries: Array<{ name: string; p: string; st: StatLike; xattrs?: Record<string, string> }>;
}

type WalkOptions = {
  exclude: Set<string>;
  warnings: string[];
  signal?: AbortSignal;
  codec: CodecPool;
  /** symlinks walked as the directories they point at, with those directories' stats (a PostgreSQL cluster's tablespaces) */
  follow?: Map<string, StatLike>;
};

/** Reads and stats directories in a codec worker, together; each listing is undefined when it cannot be read (a warning says so). */
function listDirs(dirs: Array<{ abs: string; rel: string }>, opts: WalkOptions, isRoot: boolean): Array<Promise<Listing | undefined>> {
  const all = opts.codec.listDirs(dirs.map((d) => d.abs));
  return dirs.map(async (d, i) => toListing((await all)[i] as DirListing, d.abs, d.rel, opts, isRoot));
}

function toListing(listing: DirListing, abs: string, rel: string, opts: WalkOptions, isRoot: boolean): Listing | undefined {
  if (!listing.ok) {
    if (isRoot) throw new HoldfastError('PATH_UNREADABLE', `cannot read source directory ${abs}: ${listing.message}`, { path: abs });
    opts.warnings.push(`${rel}: directory not readable (${listing.code}); its contents are not in this recovery point`);
    return undefined;
  }
  const entries: Listing['entries'] = [];
  const { names, stats, xattrs } = listing;
  names.forEach((name, i) => {
    const p = join(abs, name);
    if (opts.exclude.has(p)) return;
    const st = StatView.of(stats, i);
    if (!st) {
      const code = statErrno(stats, i);
      if (code !== 'ENOENT') opts.warnings.push(`${joinEntryPath(rel, name)}: cannot stat (${code})`);
      return; // vanished since readdir
    }
    entries.push({ name, p, st: opts.follow?.get(p) ?? st, xattrs: xattrs?.[i] });
  });
  return { rel, entries };
}

/**
 * Yields a directory's entries, descending into subdirectories in order. The listings of a
 * directory's subdirectories are started as soon as the directory is listed, so a cold tree is
 * read with many requests in flight rather than one directory at a time.
 */
async function* walkDir(abs: string, rel: string, opts: WalkOptions, isRoot: boolean, listing?: Promise<Listing | undefined>): AsyncGenerator<WalkItem> {
  throwIfAborted(opts.signal);
  const list = await (listing ?? (listDirs([{ abs, rel }], opts, isRoot)[0]));
  if (!list) return;
  const ahead = new Map<string, Promise<Listing | undefined>>();
  const children = list.entries.filter((s) => isDirStat(s.st)).map((s) => ({ abs: s.p, rel: joinEntryPath(rel, s.name) }));
  if (children.length > 0) {
    listDirs(children, opts, false).forEach((pending, i) => {
      pending.catch(() => undefined); // awaited when the walk reaches it
      ahead.set((children[i] as { abs: string }).abs, pending);
    });
  }
  for (const s of list.entries) {
    const childRel = joinEntryPath(rel, s.name);
    yield { rel: childRel, abs: s.p, st: s.st, xattrs: s.xattrs };
    if (isDirStat(s.st)) yield* walkDir(s.p, childRel, opts, false, ahead.get(s.p));
  }
}
