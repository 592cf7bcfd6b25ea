/**
 * Reading and applying the metadata a faithful restore needs: type, mode, owner, times (ns),
 * extended attributes (POSIX ACLs are the system.posix_acl_* attributes), device numbers.
 */
import { lchown, chmod, lstat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { constants } from 'node:fs';
import { listXattrs, getXattr, setXattr, utimensNoFollow } from '../native/index.js';
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

/** An ACL xattr with only its header: setting it removes the ACL. */
const EMPTY_ACL = Buffer.from([2, 0, 0, 0]);

/**
 * A file created under a directory with a default ACL inherits an access ACL; one that had none
 * at backup time must not keep it.
 */
function clearInheritedAcls(path: string, e: Entry): void {
  let present: string[];
  try {
    present = listXattrs(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOTSUP' || errnoCode(err) === 'EOPNOTSUPP') return;
    throw err;
  }
  for (const name of ['system.posix_acl_access', 'system.posix_acl_default']) {
    if (present.includes(name) && !(e.xattrs && name in e.xattrs)) setXattr(path, name, EMPTY_ACL);
  }
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Applies owner, mode, xattrs and times to a restored object, in the order that keeps each
 * step's effect: chown clears setuid bits, so mode follows it; times come last.
 */
export async function applyMeta(path: string, e: Entry, warnings: string[]): Promise<void> {
  if (isRoot) await lchown(path, e.uid, e.gid);
  if (e.type !== 'symlink') {
    await chmod(path, e.mode);
    clearInheritedAcls(path, e);
  }
  if (e.xattrs) {
    for (const [name, value] of Object.entries(e.xattrs)) {
      try {
        setXattr(path, name, Buffer.from(value, 'base64'));
      } catch (err) {
        // Unprivileged restores cannot set trusted.* / security.*: say so, keep going.
        warnings.push(`${e.path}: extended attribute ${name} not restored (${errnoCode(err) ?? String(err)})`);
      }
    }
  }
  const mtime = BigInt(e.mtimeNs);
  utimensNoFollow(path, e.atimeNs ? BigInt(e.atimeNs) : mtime, mtime);
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
