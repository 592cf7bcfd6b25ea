/**
 * One entry's stat inside a listing's int64 array (`STAT` order), read field by field. A
 * directory listing moves from the worker that made it as that one array, not as an object of
 * bigints per entry: a walk of 20,000 entries cost the main thread ~250,000 small objects to
 * clone, hold and collect.
 */
import { constants } from 'node:os';
import { STAT, STAT_FIELDS } from './index.js';

export class StatView {
  /** `at`: where the entry's fields start (entry i: i * STAT_FIELDS); its lstat succeeded (mode not 0) */
  constructor(
    private readonly v: BigInt64Array,
    private readonly at: number,
  ) {}

  get mode(): bigint {
    return this.field(STAT.mode);
  }
  get uid(): bigint {
    return this.field(STAT.uid);
  }
  get gid(): bigint {
    return this.field(STAT.gid);
  }
  get size(): bigint {
    return this.field(STAT.size);
  }
  get blocks(): bigint {
    return this.field(STAT.blocks);
  }
  get mtimeNs(): bigint {
    return this.field(STAT.mtimeNs);
  }
  get ctimeNs(): bigint {
    return this.field(STAT.ctimeNs);
  }
  get ino(): bigint {
    return this.field(STAT.ino);
  }
  get dev(): bigint {
    return this.field(STAT.dev);
  }
  get nlink(): bigint {
    return this.field(STAT.nlink);
  }
  get rdev(): bigint {
    return this.field(STAT.rdev);
  }

  /**
   * Copies the fields a tree signature covers (mode, uid, gid, size; ino, dev, nlink, rdev,
   * mtimeNs, ctimeNs: all but blocks) into `dst` at `off` as 80 bytes of int64s in this
   * machine's byte order, without making a bigint. Returns the offset after them.
   */
  copySignedFields(dst: Buffer, off: number): number {
    const bytes = new Uint8Array(this.v.buffer, this.v.byteOffset + this.at * 8, STAT.ctimeNs * 8 + 8);
    dst.set(bytes.subarray(0, STAT.blocks * 8), off);
    dst.set(bytes.subarray((STAT.blocks + 1) * 8), off + STAT.blocks * 8);
    return off + 80;
  }

  private field(k: number): bigint {
    return this.v[this.at + k] as bigint;
  }
}

/** The errno name ('ENOENT', ...) of entry `i` whose lstat failed (its mode is 0, the errno in its uid). */
export function statErrno(stats: BigInt64Array, i: number): string {
  const errno = Number(stats[i * STAT_FIELDS + STAT.uid]);
  return Object.entries(constants.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
}
