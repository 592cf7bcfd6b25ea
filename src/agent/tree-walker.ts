/**
 * Walks a directory tree in manifest order: a directory before its children, names sorted, so
 * two walks of the same tree produce the same manifest stream (and so dedup against each other).
 */
import { lstat, readdir } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { HoldfastError, errnoCode, throwIfAborted } from '../core/errors.js';
import { joinEntryPath, ROOT_PATH } from '../core/entry-path.js';

export interface WalkItem {
  rel: string;
  abs: string;
  st: BigIntStats;
}

const STAT_BATCH = 128;

export async function* walkTree(root: string, opts: { exclude: Set<string>; warnings: string[]; signal?: AbortSignal }): AsyncGenerator<WalkItem> {
  let rootSt: BigIntStats;
  try {
    rootSt = await lstat(root, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new HoldfastError('PATH_NOT_FOUND', `source path ${root} does not exist`, { path: root });
    throw new HoldfastError('PATH_UNREADABLE', `cannot read source path ${root}: ${(err as Error).message}`, { path: root });
  }
  if (!rootSt.isDirectory()) throw new HoldfastError('BAD_ARGUMENT', `source path ${root} is not a directory (use --kind image for an image file)`, { path: root });
  yield { rel: ROOT_PATH, abs: root, st: rootSt };
  yield* walkDir(root, ROOT_PATH, opts, true);
}

interface Listing {
  rel: string;
  entries: Array<{ name: string; p: string; st: BigIntStats }>;
}

type WalkOptions = { exclude: Set<string>; warnings: string[]; signal?: AbortSignal };

/** Reads and stats one directory; undefined when it cannot be read (a warning says so). */
async function listDir(abs: string, rel: string, opts: WalkOptions, isRoot: boolean): Promise<Listing | undefined> {
  let names: string[];
  try {
    names = await readdir(abs);
  } catch (err) {
    if (isRoot) throw new HoldfastError('PATH_UNREADABLE', `cannot read source directory ${abs}: ${(err as Error).message}`, { path: abs });
    opts.warnings.push(`${rel}: directory not readable (${errnoCode(err) ?? String(err)}); its contents are not in this recovery point`);
    return undefined;
  }
  names.sort();
  const entries: Listing['entries'] = [];
  for (let i = 0; i < names.length; i += STAT_BATCH) {
    const stats = await Promise.all(
      names.slice(i, i + STAT_BATCH).map(async (name) => {
        const p = join(abs, name);
        if (opts.exclude.has(p)) return undefined;
        try {
          return { name, p, st: await lstat(p, { bigint: true }) };
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') opts.warnings.push(`${joinEntryPath(rel, name)}: cannot stat (${errnoCode(err) ?? String(err)})`);
          return undefined; // vanished since readdir
        }
      }),
    );
    for (const s of stats) if (s) entries.push(s);
  }
  return { rel, entries };
}

/**
 * Yields a directory's entries, descending into subdirectories in order. The listings of a
 * directory's subdirectories are started as soon as the directory is listed, so a cold tree is
 * read with many requests in flight rather than one directory at a time.
 */
async function* walkDir(abs: string, rel: string, opts: WalkOptions, isRoot: boolean, listing?: Promise<Listing | undefined>): AsyncGenerator<WalkItem> {
  throwIfAborted(opts.signal);
  const list = await (listing ?? listDir(abs, rel, opts, isRoot));
  if (!list) return;
  const ahead = new Map<string, Promise<Listing | undefined>>();
  for (const s of list.entries) {
    if (s.st.isDirectory()) {
      const childRel = joinEntryPath(rel, s.name);
      const pending = listDir(s.p, childRel, opts, false);
      pending.catch(() => undefined); // awaited when the walk reaches it
      ahead.set(s.p, pending);
    }
  }
  for (const s of list.entries) {
    const childRel = joinEntryPath(rel, s.name);
    yield { rel: childRel, abs: s.p, st: s.st };
    if (s.st.isDirectory()) yield* walkDir(s.p, childRel, opts, false, ahead.get(s.p));
  }
}
