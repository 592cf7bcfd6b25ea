/**
 * Typed access to the holdfast_native addon (native/holdfast.c): the Linux calls that Node's fs
 * lacks but a faithful backup and restore need — extended attributes (and so POSIX ACLs) without
 * following symlinks, SEEK_DATA/SEEK_HOLE to walk sparse files, mknod for fifos and devices, and
 * nanosecond times on symlinks and open files; and the content-defined chunker's inner loop in C.
 * Every call is synchronous.
 *
 * Failures throw errors shaped like Node's fs errors (see {@link NativeError}), e.g.
 * `ENODATA: no data available, lgetxattr '/x'` with code 'ENODATA', errno -61, syscall, path.
 */
import { createRequire } from 'node:module';

/** An error thrown by a failed system call, shaped like the errors of Node's fs module. */
export interface NativeError extends Error {
  /** errno name as Node reports it: 'ENOENT', 'ENODATA', 'ENOTSUP', 'EPERM', ... */
  code: string;
  /** The negated errno value, as in Node (ENOENT is -2). */
  errno: number;
  syscall: string;
  /** Absent for calls on a file descriptor. */
  path?: string;
}

/** listDirStats' result: names, and per name STAT_FIELDS int64s (see the C source). */
export interface DirStats {
  names: string[];
  stats: BigInt64Array;
}

/** Field order in DirStats.stats; mode 0 means lstat failed and the errno is in `uid`. */
export const STAT = { mode: 0, uid: 1, gid: 2, size: 3, blocks: 4, ino: 5, dev: 6, nlink: 7, rdev: 8, mtimeNs: 9, ctimeNs: 10, xattrBytes: 11 } as const;
export const STAT_FIELDS = 12;

interface Binding {
  listDirStats(path: string): DirStats;
  /** absent in an addon built before it: callers then list synchronously */
  listDirStatsAsync?(path: string): Promise<DirStats>;
  listXattrs(path: string): string[];
  getXattr(path: string, name: string): Buffer;
  setXattr(path: string, name: string, value: Uint8Array): void;
  seekData(fd: number, offset: number): number;
  seekHole(fd: number, offset: number): number;
  mknod(path: string, mode: number, dev: number | bigint): void;
  utimensNoFollow(path: string, atimeNs: bigint, mtimeNs: bigint): void;
  futimens(fd: number, atimeNs: bigint, mtimeNs: bigint): void;
  inotifyInit(): number;
  inotifyAddWatch(fd: number, path: string, mask: number): number;
  inotifyRmWatch(fd: number, wd: number): void;
  inotifyRead(fd: number, buffer: Buffer): number;
  /** absent in an addon built before it: callers then skip direct I/O */
  addressMod?(view: Uint8Array, align: number): number;
  /** absent in an addon built before it: callers then cut in JavaScript */
  cdcSplit?(view: Uint8Array, min: number, avg: number, max: number, maskSmall: number, maskLarge: number, final: boolean, lengths: Uint32Array): number;
  /** absent in an addon built before it: callers then use Node's spawn */
  spawnProcess?: SpawnProcess;
}

/** The parent's ends of a spawned child's pipes (-1: /dev/null), and its pid. */
export interface SpawnedFds {
  pid: number;
  stdin: number;
  stdout: number;
  stderr: number;
}

/**
 * posix_spawn of `file` (looked up in PATH) with `argv` (argv[0] included) and `env` (null: this
 * process's); bit i of `pipes` gives standard stream i a pipe, else /dev/null; `detached` starts a
 * new session. `onExit(code, signal)` is called once: code -1 when the child was killed by `signal`.
 */
export type SpawnProcess = (file: string, argv: string[], env: string[] | null, pipes: number, detached: boolean, onExit: (code: number, signal: number) => void) => SpawnedFds;

// Relative to the compiled file, dist/src/native/index.js.
const binding = createRequire(import.meta.url)('../../../native/build/Release/holdfast_native.node') as Binding;

/** See {@link SpawnProcess}; undefined in an addon built before it. */
export const spawnProcess: SpawnProcess | undefined = binding.spawnProcess?.bind(binding);

/** Names of the extended attributes of `path` itself (a symlink is not followed); [] when none. */
export function listXattrs(path: string): string[] {
  return binding.listXattrs(path);
}

/** The value of extended attribute `name` of `path` (not following symlinks); ENODATA when absent. */
export function getXattr(path: string, name: string): Buffer {
  return binding.getXattr(path, name);
}

/** Creates or replaces extended attribute `name` of `path` (not following symlinks). */
export function setXattr(path: string, name: string, value: Uint8Array): void {
  binding.setXattr(path, name, value);
}

/**
 * The offset of the first byte of data at or after `offset` (lseek SEEK_DATA), or -1 when there
 * is no data from `offset` to the end of the file. Moves the file position of `fd`.
 */
export function seekData(fd: number, offset: number): number {
  return binding.seekData(fd, offset);
}

/**
 * The offset of the first hole at or after `offset` (lseek SEEK_HOLE); the end of the file counts
 * as a hole. -1 when `offset` is at or beyond the end of the file. Moves the file position of `fd`.
 * A file system without hole reporting answers as if the whole file were data.
 */
export function seekHole(fd: number, offset: number): number {
  return binding.seekHole(fd, offset);
}

/**
 * Creates a fifo, character or block device (or socket/regular) node. `mode` carries the type bits
 * (fs.constants.S_IFIFO, S_IFCHR, S_IFBLK) and permissions, less the umask; `dev` is an rdev as
 * fs.lstat() reports it (number, or bigint from lstat with `bigint: true`), ignored for fifos.
 */
export function mknod(path: string, mode: number, dev: number | bigint): void {
  binding.mknod(path, mode, dev);
}

/** Sets access and modification times in ns since the epoch on `path` itself, symlinks included. */
export function utimensNoFollow(path: string, atimeNs: bigint, mtimeNs: bigint): void {
  binding.utimensNoFollow(path, atimeNs, mtimeNs);
}

/** Sets access and modification times in ns since the epoch on an open file. */
export function futimens(fd: number, atimeNs: bigint, mtimeNs: bigint): void {
  binding.futimens(fd, atimeNs, mtimeNs);
}

/**
 * Every entry of a directory with its lstat (not following symlinks), in readdir order, in one
 * call; throws like fs when the directory cannot be opened or read.
 */
export function listDirStats(path: string): DirStats {
  return binding.listDirStats(path);
}

/** listDirStats with its system calls on a libuv pool thread: a cold tree is read with many listings in flight. */
export function listDirStatsAsync(path: string): Promise<DirStats> {
  if (!binding.listDirStatsAsync) return new Promise((resolve) => resolve(binding.listDirStats(path)));
  return binding.listDirStatsAsync(path);
}

/** inotify event bits (linux/inotify.h) that the dir tracker's change journal uses. */
export const IN = {
  MODIFY: 0x2,
  ATTRIB: 0x4,
  CLOSE_WRITE: 0x8,
  MOVED_FROM: 0x40,
  MOVED_TO: 0x80,
  CREATE: 0x100,
  DELETE: 0x200,
  DELETE_SELF: 0x400,
  MOVE_SELF: 0x800,
  UNMOUNT: 0x2000,
  Q_OVERFLOW: 0x4000,
  IGNORED: 0x8000,
  ONLYDIR: 0x1000000,
  DONT_FOLLOW: 0x2000000,
  EXCL_UNLINK: 0x4000000,
  ISDIR: 0x40000000,
} as const;

/** A non-blocking, close-on-exec inotify descriptor; close it with fs.closeSync. */
export function inotifyInit(): number {
  return binding.inotifyInit();
}

/**
 * Watches `path` for the events in `mask`; returns the watch descriptor (the same one again for
 * an inode already watched, which is how a moved directory's watch learns its new path).
 * ENOSPC means the per-user watch limit (fs.inotify.max_user_watches) is reached.
 */
export function inotifyAddWatch(fd: number, path: string, mask: number): number {
  return binding.inotifyAddWatch(fd, path, mask);
}

/** Removes a watch; one already gone (its directory deleted) is not an error. */
export function inotifyRmWatch(fd: number, wd: number): void {
  binding.inotifyRmWatch(fd, wd);
}

/** One inotify event as the kernel queued it; `name` is '' for an event on the watched directory itself. */
export interface InotifyEvent {
  wd: number;
  mask: number;
  cookie: number;
  name: string;
}

/**
 * Every event queued on `fd` now, without blocking (none: []). Reads until the queue is empty, so
 * after it returns every change that completed before the call has been seen.
 */
export function inotifyReadAll(fd: number, buffer: Buffer = Buffer.alloc(64 * 1024)): InotifyEvent[] {
  const out: InotifyEvent[] = [];
  for (;;) {
    const n = binding.inotifyRead(fd, buffer);
    if (n === 0) return out;
    for (let at = 0; at + 16 <= n; ) {
      const len = buffer.readUInt32LE(at + 12);
      const raw = buffer.subarray(at + 16, at + 16 + len);
      const end = raw.indexOf(0);
      out.push({ wd: buffer.readInt32LE(at), mask: buffer.readUInt32LE(at + 4), cookie: buffer.readUInt32LE(at + 8), name: (end < 0 ? raw : raw.subarray(0, end)).toString('utf8') });
      at += 16 + len;
    }
  }
}

/** Alignment of memory, offsets and lengths for O_DIRECT transfers (the common logical block size). */
export const DIRECT_ALIGN = 4096;

/** `n` rounded up to whole DIRECT_ALIGN blocks. */
export function wholeBlocks(n: number): number {
  return Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;
}

/** Bytes from `view`'s start to its first DIRECT_ALIGN-aligned address; undefined when the addon cannot tell. */
export function alignSkip(view: Uint8Array): number | undefined {
  if (typeof binding.addressMod !== 'function') return undefined;
  return (DIRECT_ALIGN - binding.addressMod(view, DIRECT_ALIGN)) % DIRECT_ALIGN;
}

/**
 * A view of `size` bytes, DIRECT_ALIGN-aligned in memory, inside a fresh buffer that owns its
 * memory; undefined when the addon cannot tell addresses (then use buffered I/O).
 */
export function alignedBuffer(size: number): Buffer | undefined {
  if (typeof binding.addressMod !== 'function') return undefined;
  const raw = Buffer.allocUnsafeSlow(size + DIRECT_ALIGN);
  const skip = alignSkip(raw) as number;
  return raw.subarray(skip, skip + size);
}

/** Whether the addon has the native content-defined cutter (one built before it does not). */
export const hasCdcCuts = typeof binding.cdcSplit === 'function';

/**
 * Content-defined cut lengths of `view` from its start, exactly as repeated cdcNext calls of
 * src/core/chunker.ts would give them with these sizes and masks (cdcMasks(avg)), written into
 * `lengths`; returns how many. Stops when no complete chunk is left (fewer than `max` bytes and
 * not `final`) or `lengths` is full: then continue after the chunks returned. Only when
 * {@link hasCdcCuts}.
 */
export function cdcCuts(view: Uint8Array, sizes: { min: number; avg: number; max: number }, masks: { small: number; large: number }, final: boolean, lengths: Uint32Array): number {
  if (!binding.cdcSplit) throw new Error('the native addon predates cdcSplit: rebuild it (npm run build:native)');
  return binding.cdcSplit(view, sizes.min, sizes.avg, sizes.max, masks.small, masks.large, final, lengths);
}
