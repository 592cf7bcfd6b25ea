/**
 * Reading and applying the metadata a faithful restore needs: type, mode, owner, times (ns),
 * extended attributes (POSIX ACLs are the system.posix_acl_* attributes), device numbers.
 */
import { lstat } from 'node:fs/promises';
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

export async function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}
