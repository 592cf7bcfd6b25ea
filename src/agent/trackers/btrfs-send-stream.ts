/**
 * A parser for the btrfs send stream (`btrfs send --no-data -p PREV CUR`), reduced to what a
 * sync needs: which paths of CUR are new, which byte ranges of which files were written, and how
 * to find a path of CUR in PREV across renames. The stream is the list of operations that turns
 * PREV into CUR; paths in it are as they stand at that step, so each is carried forward through
 * the renames that follow it.
 *
 * Format (v1/v2): "btrfs-stream\0", u32 version; then commands: u32 payload length, u16 command,
 * u32 crc32c, payload of TLVs (u16 attribute, u16 length, value), all little-endian.
 */
import { HoldfastError } from '../../core/errors.js';
import type { ByteRange } from '../nbd/nbd-client.js';

const MAGIC = Buffer.from('btrfs-stream\0', 'latin1');

const C = {
  SUBVOL: 1,
  SNAPSHOT: 2,
  MKFILE: 3,
  MKDIR: 4,
  MKNOD: 5,
  MKFIFO: 6,
  MKSOCK: 7,
  SYMLINK: 8,
  RENAME: 9,
  LINK: 10,
  UNLINK: 11,
  RMDIR: 12,
  WRITE: 15,
  CLONE: 16,
  TRUNCATE: 17,
  END: 21,
  UPDATE_EXTENT: 22,
  FALLOCATE: 23,
  ENCODED_WRITE: 25,
} as const;

const A = { UUID: 1, SIZE: 4, PATH: 15, PATH_TO: 16, PATH_LINK: 17, FILE_OFFSET: 18, DATA: 19, CLONE_UUID: 20, CLONE_PATH: 22, CLONE_OFFSET: 23, CLONE_LEN: 24, FALLOCATE_MODE: 25 } as const;

/** One command: its number and attributes (values as raw bytes). */
export interface SendCommand {
  cmd: number;
  attrs: Map<number, Buffer>;
}

export function* parseSendStream(stream: Buffer): Generator<SendCommand> {
  if (stream.length < 17 || !stream.subarray(0, 13).equals(MAGIC)) throw bad('does not start with the btrfs-stream magic');
  const version = stream.readUInt32LE(13);
  if (version < 1 || version > 3) throw bad(`version ${version} is not supported`);
  let pos = 17;
  while (pos < stream.length) {
    if (pos + 10 > stream.length) throw bad('ends inside a command header');
    const len = stream.readUInt32LE(pos);
    const cmd = stream.readUInt16LE(pos + 4);
    const end = pos + 10 + len;
    if (end > stream.length) throw bad(`command ${cmd} runs past the end`);
    const attrs = new Map<number, Buffer>();
    let p = pos + 10;
    while (p < end) {
      if (p + 4 > end) throw bad(`attribute header of command ${cmd} is cut`);
      const type = stream.readUInt16LE(p);
      // v2 data attributes run to the end of the command and carry no length.
      const vlen = version >= 2 && type === A.DATA ? end - p - 2 : stream.readUInt16LE(p + 2);
      const vstart = version >= 2 && type === A.DATA ? p + 2 : p + 4;
      if (vstart + vlen > end) throw bad(`attribute ${type} of command ${cmd} runs past its command`);
      attrs.set(type, stream.subarray(vstart, vstart + vlen));
      p = vstart + vlen;
    }
    yield { cmd, attrs };
    if (cmd === C.END) return;
    pos = end;
  }
}

function bad(what: string): HoldfastError {
  return new HoldfastError('SOURCE_UNREADABLE', `btrfs send stream ${what}`);
}

/** What changed between two snapshots, in the newer one's paths (relative, '/'-separated). */
export interface SendChanges {
  /** paths that did not exist in PREV as the same object (created or replaced) */
  created: Set<string>;
  /** byte ranges written (or cloned from elsewhere, or punched) per file */
  written: Map<string, ByteRange[]>;
  /** files whose size was set (truncate), with the size */
  truncated: Map<string, number>;
  /** where a path of CUR was in PREV (undefined when it is new) */
  oldPath(path: string): string;
}

interface Step {
  kind: 'created' | 'written' | 'truncated';
  path: string;
  range?: ByteRange;
  size?: number;
  /** renames before this step */
  at: number;
  /** a clone of PREV's bytes: no change if the file's path in PREV is this */
  unchangedIf?: string;
}

export function sendChanges(stream: Buffer): SendChanges {
  const renames: Array<[string, string]> = [];
  /** new name ← existing name, each after `at` renames (btrfs sends a file's rename as link + unlink) */
  const links: Array<{ path: string; target: string; at: number }> = [];
  const steps: Step[] = [];
  const str = (c: SendCommand, a: number): string => {
    const v = c.attrs.get(a);
    if (!v) throw bad(`command ${c.cmd} lacks attribute ${a}`);
    return v.toString('utf8');
  };
  const u64 = (c: SendCommand, a: number): number => {
    const v = c.attrs.get(a);
    if (!v || v.length !== 8) throw bad(`command ${c.cmd} lacks a 64-bit attribute ${a}`);
    return Number(v.readBigUInt64LE(0));
  };
  /** the snapshot being sent and its parent, as clone sources name them */
  let self: Buffer | undefined;
  let parent: Buffer | undefined;
  for (const c of parseSendStream(stream)) {
    const at = renames.length;
    switch (c.cmd) {
      case C.SUBVOL:
      case C.SNAPSHOT:
        self = c.attrs.get(A.UUID);
        parent = c.attrs.get(A.CLONE_UUID);
        break;
      case C.MKFILE:
      case C.MKDIR:
      case C.MKNOD:
      case C.MKFIFO:
      case C.MKSOCK:
      case C.SYMLINK:
        steps.push({ kind: 'created', path: str(c, A.PATH), at });
        break;
      case C.LINK:
        links.push({ path: str(c, A.PATH), target: str(c, A.PATH_LINK), at });
        break;
      case C.RENAME:
        renames.push([str(c, A.PATH), str(c, A.PATH_TO)]);
        break;
      case C.WRITE:
      case C.UPDATE_EXTENT:
      case C.ENCODED_WRITE: {
        const length = c.cmd === C.UPDATE_EXTENT ? u64(c, A.SIZE) : (c.attrs.get(A.DATA)?.length ?? 0);
        steps.push({ kind: 'written', path: str(c, A.PATH), range: { offset: u64(c, A.FILE_OFFSET), length }, at });
        break;
      }
      case C.CLONE: {
        // btrfs sends the unwritten parts of an extent a write split as clones of the same file
        // at the same offset (megabytes around a 4 KiB write): no change to those bytes. From
        // the parent snapshot the source path is the file's old path, checked once renames are known.
        const range = { offset: u64(c, A.FILE_OFFSET), length: u64(c, A.CLONE_LEN) };
        const from = c.attrs.get(A.CLONE_UUID);
        const sameOffset = u64(c, A.CLONE_OFFSET) === range.offset;
        if (sameOffset && self && from?.equals(self) && str(c, A.CLONE_PATH) === str(c, A.PATH)) break;
        const unchangedIf = sameOffset && parent && from?.equals(parent) ? str(c, A.CLONE_PATH) : undefined;
        steps.push({ kind: 'written', path: str(c, A.PATH), range, at, unchangedIf });
        break;
      }
      case C.FALLOCATE:
        steps.push({ kind: 'written', path: str(c, A.PATH), range: { offset: u64(c, A.FILE_OFFSET), length: u64(c, A.SIZE) }, at });
        break;
      case C.TRUNCATE:
        steps.push({ kind: 'truncated', path: str(c, A.PATH), size: u64(c, A.SIZE), at });
        break;
      default:
        break; // metadata (chmod, chown, utimes, xattrs), unlink, rmdir: the walk of CUR sees them
    }
  }
  const forwardTo = (path: string, from: number, to: number): string => {
    let p = path;
    for (let i = from; i < to; i++) p = moved(p, ...(renames[i] as [string, string]));
    return p;
  };
  const forward = (path: string, from: number): string => forwardTo(path, from, renames.length);
  // A new name shares its inode's changes: steps on the target made before the link count for it too.
  for (const l of links) {
    for (const s of [...steps]) {
      if (s.at <= l.at && forwardTo(s.path, s.at, l.at) === l.target) steps.push({ ...s, path: l.path, at: l.at });
    }
  }
  /** where a path of CUR was in PREV */
  const oldPath = (path: string): string => {
    let p = path;
    let l = links.length - 1;
    for (let i = renames.length; i >= 0; i--) {
      // Undo the links made after rename i-1 (newest first), then rename i-1 itself.
      for (; l >= 0 && (links[l] as { at: number }).at === i; l--) {
        const link = links[l] as { path: string; target: string };
        if (p === link.path) p = link.target;
      }
      if (i > 0) {
        const [from, to] = renames[i - 1] as [string, string];
        p = moved(p, to, from);
      }
    }
    return p;
  };
  const created = new Set<string>();
  const written = new Map<string, ByteRange[]>();
  const truncated = new Map<string, number>();
  for (const s of steps) {
    const p = forward(s.path, s.at);
    if (s.unchangedIf !== undefined && !created.has(p) && oldPath(p) === s.unchangedIf) continue;
    if (s.kind === 'created') created.add(p);
    else if (s.kind === 'truncated') truncated.set(p, s.size ?? 0);
    else {
      const list = written.get(p) ?? [];
      list.push(s.range as ByteRange);
      written.set(p, list);
    }
  }
  return { created, written, truncated, oldPath };
}

/** `path` after `from` was renamed to `to` (a renamed directory moves everything under it). */
function moved(path: string, from: string, to: string): string {
  if (path === from) return to;
  if (path.startsWith(`${from}/`)) return to + path.slice(from.length);
  return path;
}
