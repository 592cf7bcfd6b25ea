/**
 * A digest of a tree as one walk saw it: every path with its stat (type and mode, owner, size,
 * times, inode, links, device) and extended attributes, in walk order, plus the settings that
 * shape a manifest. Two walks with the same signature would give the same manifest (file data
 * is trusted by size, mtime, ctime and inode exactly as the per-file comparison with the parent
 * trusts it), so a sync whose tree signature equals the parent's can reuse the parent's
 * manifest without reading it back or writing it again.
 *
 * An item is hashed as: its path (UTF-8), a NUL, the ten stat fields as int64s (StatView's
 * order), its xattrs as JSON (if any), a newline. The stats are copied from the walk's listing
 * arrays, so no bigint or string is made per field.
 */
import { createHash, type Hash } from 'node:crypto';
import { StatView } from '../native/stat-view.js';
import type { StatLike } from './file-meta.js';
import type { WalkItem } from './tree-walker.js';

/** Bytes gathered before one native hash update. */
const BATCH = 256 * 1024;

export class TreeSignature {
  private readonly h: Hash;
  /** items not hashed yet: one native update per batch, not per item */
  private readonly buf = Buffer.allocUnsafe(BATCH);
  private at = 0;

  constructor(settings: object) {
    this.h = createHash('sha256').update(JSON.stringify(settings)).update('\n');
  }

  add(it: WalkItem): void {
    const x = it.xattrs ? JSON.stringify(it.xattrs) : '';
    // Room for the worst case (3 UTF-8 bytes per UTF-16 unit), else hash what is gathered first.
    const most = (it.rel.length + x.length) * 3 + 82;
    if (this.at + most > BATCH) this.flush();
    if (most > BATCH) {
      this.h.update(it.rel).update('\0');
      const fields = Buffer.alloc(80);
      writeStat(it.st, fields, 0);
      this.h.update(fields).update(x).update('\n');
      return;
    }
    this.at += this.buf.write(it.rel, this.at, 'utf8');
    this.buf[this.at++] = 0;
    this.at = writeStat(it.st, this.buf, this.at);
    if (x) this.at += this.buf.write(x, this.at, 'utf8');
    this.buf[this.at++] = 10;
  }

  digest(): string {
    this.flush();
    return this.h.digest('hex');
  }

  private flush(): void {
    if (this.at > 0) this.h.update(this.buf.subarray(0, this.at));
    this.at = 0;
  }
}

/** The ten signed fields at `off`: copied from a listing's array, or written one by one in the same layout for another stat (the root's lstat, a followed link's target). */
function writeStat(st: StatLike, dst: Buffer, off: number): number {
  if (st instanceof StatView) return st.copySignedFields(dst, off);
  for (const v of [st.mode, st.uid, st.gid, st.size, st.ino, st.dev, st.nlink, st.rdev, st.mtimeNs, st.ctimeNs]) {
    if (BIG_ENDIAN) dst.writeBigInt64BE(v, off);
    else dst.writeBigInt64LE(v, off);
    off += 8;
  }
  return off;
}

const BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;
