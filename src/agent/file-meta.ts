/**
 * Reading and applying the metadata a faithful restore needs: type, mode, owner, times (ns),
 * extended attributes (POSIX ACLs are the system.posix_acl_* attributes), device numbers.
 */
import { lstat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { constants } from 'node:fs';
import { listXattrs, getXattr } from '../native/index.js';
import { applyMetaSync } from '../workers/apply-meta.js';
import type { Entry } from '../core/manifest.js';
import { errnoCode } from '../core/errors.js';

export type EntryType = Entry['type'];

export function entryType(st: BigIntStats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  return undefined;
}

export function readXattrs(path: string): Record<string, string> | undefined {
  let names: string[];
  try {
    names = listXattrs(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return undefined;
    throw err;
  }
  if (names.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const name of names.sort()) {
    try {
      out[name] = getXattr(path, name).toString('base64');
    } catch (err) {
      if (errnoCode(err) !== 'ENODATA') throw err; // removed meanwhile
    }
  }
  return out;
}

export function baseMeta(st: BigIntStats): { mode: number; uid: number; gid: number; mtimeNs: string; ctimeNs: string } {
  return {
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtimeNs: st.mtimeNs.toString(),
    ctimeNs: st.ctimeNs.toString(),
  };
}

/** Owner, mode, ACLs, xattrs and times, applied as the restore's last step for each object. */
export function applyMeta(path: string, e: Entry, warnings: string[]): void {
  applyMetaSync(path, e, warnings);
}

export const S_IFMT = constants.S_IFMT;

export async function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}
