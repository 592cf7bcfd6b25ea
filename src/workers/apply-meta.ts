/**
 * Applying restored metadata: owner, mode, POSIX ACLs and xattrs, then times. Synchronous so a
 * codec worker can finish a restored file in one go; these calls are quick on an inode just
 * written.
 */
import { chmodSync, lchownSync } from 'node:fs';
import { listXattrs, setXattr, utimensNoFollow } from '../native/index.js';
import type { Entry } from '../core/manifest.js';
import { errnoCode } from '../core/errors.js';

export type MetaOf = Pick<Entry, 'type' | 'path' | 'mode' | 'uid' | 'gid' | 'mtimeNs' | 'atimeNs' | 'xattrs'>;

/** An ACL xattr with only its header: setting it removes the ACL. */
const EMPTY_ACL = Buffer.from([2, 0, 0, 0]);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * A file created under a directory with a default ACL inherits an access ACL; one that had none
 * at backup time must not keep it.
 */
function clearInheritedAcls(path: string, e: MetaOf): void {
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

/**
 * The order keeps each step's effect: chown clears setuid bits, so mode follows it; times come
 * last. Attributes an unprivileged restore cannot set become warnings, not failures.
 */
export function applyMetaSync(path: string, e: MetaOf, warnings: string[]): void {
  if (isRoot) lchownSync(path, e.uid, e.gid);
  if (e.type !== 'symlink') {
    chmodSync(path, e.mode);
    clearInheritedAcls(path, e);
  }
  if (e.xattrs) {
    for (const [name, value] of Object.entries(e.xattrs)) {
      try {
        setXattr(path, name, Buffer.from(value, 'base64'));
      } catch (err) {
        warnings.push(`${e.path}: extended attribute ${name} not restored (${errnoCode(err) ?? String(err)})`);
      }
    }
  }
  const mtime = BigInt(e.mtimeNs);
  utimensNoFollow(path, e.atimeNs ? BigInt(e.atimeNs) : mtime, mtime);
}
