/**
 * A digest of a tree as one walk saw it: every path with its stat (type and mode, owner, size,
 * times, inode, links, device) and extended attributes, in walk order, plus the settings that
 * shape a manifest. Two walks with the same signature would give the same manifest (file data
 * is trusted by size, mtime, ctime and inode exactly as the per-file comparison with the parent
 * trusts it), so a sync whose tree signature equals the parent's can reuse the parent's
 * manifest without reading it back or writing it again.
 */
import { createHash, type Hash } from 'node:crypto';
import type { WalkItem } from './tree-walker.js';

export class TreeSignature {
  private readonly h: Hash;
  /** lines not hashed yet: one native update per batch, not per item */
  private lines = '';
  private count = 0;

  constructor(settings: object) {
    this.h = createHash('sha256').update(JSON.stringify(settings)).update('\n');
  }

  add(it: WalkItem): void {
    const s = it.st;
    const x = it.xattrs ? JSON.stringify(it.xattrs) : '';
    this.lines += `${it.rel}\0${s.mode}\0${s.uid}\0${s.gid}\0${s.size}\0${s.mtimeNs}\0${s.ctimeNs}\0${s.ino}\0${s.nlink}\0${s.dev}\0${s.rdev}\0${x}\n`;
    if (++this.count % 512 === 0) this.flush();
  }

  digest(): string {
    this.flush();
    return this.h.digest('hex');
  }

  private flush(): void {
    this.h.update(this.lines);
    this.lines = '';
  }
}
