/**
 * Reading and applying the metadata a faithful restore needs: type, mode, owner, times (ns),
 * extended attributes (POSIX ACLs are the system.posix_acl_* attributes), device numbers.
 */
import { lstat, readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { constants } from 'node:fs';
import type { RawStat } from '../workers/codec-pool.js';
import type { Entry } from '../core/manifest.js';
import { errnoCode } from '../core/errors.js';

export type EntryType = Entry['type'];

/** The lstat fields a backup uses; fs BigIntStats and a worker's RawStat both fit. */
export type StatLike = RawStat;

const TYPE_BY_BITS = new Map<bigint, EntryType>([
  [BigInt(constants.S_IFREG), 'file'],
  [BigInt(constants.S_IFDIR), 'dir'],
  [BigInt(constants.S_IFLNK), 'symlink'],
  [BigInt(constants.S_IFIFO), 'fifo'],
  [BigInt(constants.S_IFSOCK), 'socket'],
  [BigInt(constants.S_IFCHR), 'chardev'],
  [BigInt(constants.S_IFBLK), 'blockdev'],
]);

export function entryType(st: StatLike): EntryType | undefined {
  return TYPE_BY_BITS.get(st.mode & BigInt(constants.S_IFMT));
}

export function isDirStat(st: StatLike): boolean {
  return entryType(st) === 'dir';
}

export { readXattrs } from '../workers/xattrs.js';

export function baseMeta(st: StatLike): { mode: number; uid: number; gid: number; mtimeNs: string; ctimeNs: string } {
  return {
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtimeNs: st.mtimeNs.toString(),
    ctimeNs: st.ctimeNs.toString(),
  };
}

/** What every entry of a walked item carries. */
export type ItemMeta = ReturnType<typeof baseMeta> & { path: string; xattrs?: Record<string, string> };

/**
 * The entry of a walked item that is not a regular file (a symlink's target is read now), or
 * the metadata of one that is, for the caller to chunk; undefined for a type no manifest keeps.
 */
export async function walkedEntry(it: { rel: string; abs: string; st: StatLike; xattrs?: Record<string, string> }): Promise<{ entry: Entry } | { file: ItemMeta } | undefined> {
  const type = entryType(it.st);
  if (!type) return undefined;
  const meta: ItemMeta = { path: it.rel, ...baseMeta(it.st), xattrs: it.xattrs };
  if (meta.xattrs === undefined) delete meta.xattrs;
  switch (type) {
    case 'dir':
    case 'fifo':
    case 'socket':
      return { entry: { type, ...meta } };
    case 'chardev':
    case 'blockdev':
      return { entry: { type, ...meta, rdev: Number(it.st.rdev) } };
    case 'symlink':
      return { entry: { type, ...meta, target: await readlink(it.abs) } };
    default:
      return { file: meta };
  }
}

export async function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}
