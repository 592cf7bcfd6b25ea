/**
 * Walks a directory tree in manifest order: a directory before its children, names sorted, so
 * two walks of the same tree produce the same manifest stream (and so dedup against each other).
 *
 * A listing stays as the worker made it (names and one int64 array of stats) and each item is
 * made as the walk reaches it: a caller may keep the listings (`record`) and walk them again
 * (`replayWalk`) without holding an object per entry, or reading the tree twice.
 */
import { lstat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import type { CodecPool, DirListing } from '../workers/codec-pool.js';
import { isDirStat, readXattrs, type StatLike } from './file-meta.js';
import { join } from 'node:path';
import { HoldfastError, errnoCode, throwIfAborted } from '../core/errors.js';
import { joinEntryPath, ROOT_PATH } from '../core/entry-path.js';
import { StatView, statErrno } from '../native/stat-view.js';
import { STAT, STAT_FIELDS } from '../native/index.js';

export interface WalkItem {
  rel: string;
  abs: string;
  st: StatLike;
  /** read with the stat when the walk ran in a worker; undefined means none */
  xattrs?: Record<string, string>;
}

/** A directory's entries the walk keeps (not excluded, stat'ed), by their index in the worker's listing. */
export interface Listing {
  abs: string;
  rel: string;
  names: string[];
  stats: BigInt64Array;
  xattrs?: Record<number, Record<string, string>>;
  /** indexes into names/stats of the entries kept, in name order */
  kept: Int32Array;
}

/** The listings a walk read, by directory path (undefined: unreadable), for `replayWalk`. */
export type WalkRecord = Map<string, Listing | undefined>;

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

/**
 * The first `count` items of a walk that recorded its listings, again and in the same order,
 * from the record alone: `first` is that walk's first item (the root).
 */
export function* replayWalk(first: WalkItem, record: WalkRecord, count: number, follow?: Map<string, StatLike>): Generator<WalkItem> {
  if (count <= 0) return;
  let left = count - 1;
  yield first;
  function* dir(abs: string): Generator<WalkItem> {
    const list = record.get(abs);
    if (!list) return;
    for (let k = 0; k < list.kept.length && left > 0; k++) {
      const it = itemOf(list, k, follow);
      left--;
      yield it;
      if (left > 0 && isDirStat(it.st)) yield* dir(it.abs);
    }
  }
  yield* dir(first.abs);
}

type WalkOptions = {
  exclude: Set<string>;
  warnings: string[];
  signal?: AbortSignal;
  codec: CodecPool;
  /** symlinks walked as the directories they point at, with those directories' stats (a PostgreSQL cluster's tablespaces) */
  follow?: Map<string, StatLike>;
  /** keeps every listing the walk reads, for replayWalk */
  record?: WalkRecord;
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
  const { names, stats, xattrs } = listing;
  const kept: number[] = [];
  names.forEach((name, i) => {
    if (opts.exclude.size > 0 && opts.exclude.has(join(abs, name))) return;
    if (stats[i * STAT_FIELDS + STAT.mode] === 0n) {
      const code = statErrno(stats, i);
      if (code !== 'ENOENT') opts.warnings.push(`${joinEntryPath(rel, name)}: cannot stat (${code})`);
      return; // vanished since readdir
    }
    kept.push(i);
  });
  return { abs, rel, names, stats, xattrs, kept: Int32Array.from(kept) };
}

/** The walk item of a listing's kept entry `k`. */
function itemOf(list: Listing, k: number, follow: Map<string, StatLike> | undefined): WalkItem {
  const i = list.kept[k] as number;
  const name = list.names[i] as string;
  const abs = join(list.abs, name);
  const st = follow?.get(abs) ?? new StatView(list.stats, i * STAT_FIELDS); // kept entries were stat'ed
  return { rel: joinEntryPath(list.rel, name), abs, st, xattrs: list.xattrs?.[i] };
}

/**
 * Yields a directory's entries, descending into subdirectories in order. The listings of a
 * directory's subdirectories are started as soon as the directory is listed, so a cold tree is
 * read with many requests in flight rather than one directory at a time.
 */
async function* walkDir(abs: string, rel: string, opts: WalkOptions, isRoot: boolean, listing?: Promise<Listing | undefined>): AsyncGenerator<WalkItem> {
  throwIfAborted(opts.signal);
  const list = await (listing ?? (listDirs([{ abs, rel }], opts, isRoot)[0]));
  opts.record?.set(abs, list);
  if (!list) return;
  const items = Array.from(list.kept, (_, k) => itemOf(list, k, opts.follow));
  const ahead = new Map<string, Promise<Listing | undefined>>();
  const children = items.filter((it) => isDirStat(it.st)).map((it) => ({ abs: it.abs, rel: it.rel }));
  if (children.length > 0) {
    listDirs(children, opts, false).forEach((pending, i) => {
      pending.catch(() => undefined); // awaited when the walk reaches it
      ahead.set((children[i] as { abs: string }).abs, pending);
    });
  }
  for (const it of items) {
    yield it;
    if (isDirStat(it.st)) yield* walkDir(it.abs, it.rel, opts, false, ahead.get(it.abs));
  }
}
