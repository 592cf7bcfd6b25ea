/**
 * Manifest entries: what rebuilds one data source at one time. A manifest is a stream of JSON
 * lines (a header, then one entry per filesystem object in walk order: parents before children,
 * names sorted), cut into chunks and stored in the pool like data. Images are one `file` entry.
 */
import { checkEntryPath } from './entry-path.js';
import { HoldfastError } from './errors.js';

export const MANIFEST_VERSION = 1;

/** [digest, plaintext length] */
export type ChunkRef = [string, number];
/** [offset, length] of a sparse hole */
export type Hole = [number, number];

/** The same chunk list (digests and lengths, in order): the same bytes. */
export function sameChunkRefs(a: ChunkRef[], b: ChunkRef[]): boolean {
  return a.length === b.length && a.every(([d, l], i) => b[i]?.[0] === d && b[i]?.[1] === l);
}

interface Base {
  path: string;
  /** permission bits, 0..0o7777 */
  mode: number;
  uid: number;
  gid: number;
  /** nanoseconds since the epoch, as decimal text */
  mtimeNs: string;
  ctimeNs?: string;
  atimeNs?: string;
  /** name → base64 value; includes system.posix_acl_access / _default */
  xattrs?: Record<string, string>;
}

interface Content {
  size: number;
  ino?: number;
  chunks: ChunkRef[];
  holes?: Hole[];
  /** the file changed on every read attempt; stored as last read */
  torn?: boolean;
}

export type Entry =
  | (Base & Content & { type: 'file' })
  | (Base & Content & { type: 'hardlink'; target: string })
  | (Base & { type: 'dir' | 'fifo' | 'socket' })
  | (Base & { type: 'symlink'; target: string })
  | (Base & { type: 'chardev' | 'blockdev'; rdev: number });

export type FileEntry = Extract<Entry, { type: 'file' | 'hardlink' }>;

export interface ManifestHeader {
  holdfast: 'manifest';
  v: typeof MANIFEST_VERSION;
  kind: 'dir' | 'image';
}

const TYPES = new Set(['file', 'hardlink', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev']);
const NS = /^\d{1,25}$/;

/**
 * The shape of an entry, checked by hand: this runs once per file on every restore and backup,
 * and a schema library's start-up alone costs more than the checks.
 */
function shapeError(r: Record<string, unknown>): string | undefined {
  const str = (k: string): boolean => typeof r[k] === 'string';
  const int = (k: string): boolean => typeof r[k] === 'number' && Number.isSafeInteger(r[k]) && (r[k]) >= 0;
  const opt = (k: string, ok: boolean): boolean => r[k] === undefined || ok;
  if (typeof r.type !== 'string' || !TYPES.has(r.type)) return `unknown type ${JSON.stringify(r.type)}`;
  if (!str('path')) return 'path is missing';
  if (!int('mode') || (r.mode as number) > 0o7777) return 'mode is invalid';
  if (!int('uid') || !int('gid')) return 'uid or gid is invalid';
  if (!str('mtimeNs') || !NS.test(r.mtimeNs as string)) return 'mtimeNs is invalid';
  if (!opt('ctimeNs', str('ctimeNs') && NS.test(r.ctimeNs as string))) return 'ctimeNs is invalid';
  if (!opt('atimeNs', str('atimeNs') && NS.test(r.atimeNs as string))) return 'atimeNs is invalid';
  if (r.xattrs !== undefined) {
    if (typeof r.xattrs !== 'object' || r.xattrs === null || Array.isArray(r.xattrs)) return 'xattrs is invalid';
    for (const v of Object.values(r.xattrs)) if (typeof v !== 'string') return 'xattrs is invalid';
  }
  if (r.type === 'file' || r.type === 'hardlink') {
    if (!int('size')) return 'size is invalid';
    if (!opt('ino', int('ino'))) return 'ino is invalid';
    if (!Array.isArray(r.chunks)) return 'chunks is missing';
    if (!opt('holes', Array.isArray(r.holes))) return 'holes is invalid';
    if (!opt('torn', typeof r.torn === 'boolean')) return 'torn is invalid';
  }
  if ((r.type === 'hardlink' || r.type === 'symlink') && !str('target')) return 'target is missing';
  if ((r.type === 'chardev' || r.type === 'blockdev') && !int('rdev')) return 'rdev is invalid';
  return undefined;
}

export function hasContent(e: Entry): e is FileEntry {
  return e.type === 'file' || e.type === 'hardlink';
}

export function encodeLine(obj: object): string {
  return `${JSON.stringify(obj)}\n`;
}

/** Parses and checks one entry line; a crafted or damaged manifest is refused here. */
export function decodeEntry(line: string): Entry {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (err) {
    throw new HoldfastError('POOL_CORRUPT', `manifest line is not JSON: ${line.slice(0, 80)}`, {}, { cause: err });
  }
  const problem = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? shapeError(raw as Record<string, unknown>) : 'not an object';
  if (problem) throw new HoldfastError('POOL_CORRUPT', `manifest entry is malformed: ${problem} in ${line.slice(0, 120)}`);
  const e = raw as Entry;
  checkEntryPath(e.path);
  if (e.type === 'hardlink') checkEntryPath(e.target);
  if (hasContent(e)) checkContentShape(e);
  return e;
}

/** Chunks plus holes must cover exactly `size` bytes, holes in order and inside the file. */
export function checkContentShape(e: FileEntry): void {
  let data = 0;
  for (const ref of e.chunks as unknown[]) {
    if (!Array.isArray(ref) || ref.length !== 2 || !isDigestText(ref[0]) || !isCount(ref[1])) {
      throw new HoldfastError('POOL_CORRUPT', `manifest entry ${e.path}: malformed chunk reference ${JSON.stringify(ref)?.slice(0, 100)}`);
    }
    data += ref[1];
  }
  let holes = 0;
  let last = 0;
  for (const h of (e.holes ?? []) as unknown[]) {
    if (!Array.isArray(h) || h.length !== 2 || !isCount(h[0]) || !isCount(h[1]) || h[1] === 0) {
      throw new HoldfastError('POOL_CORRUPT', `manifest entry ${e.path}: malformed hole ${JSON.stringify(h)?.slice(0, 100)}`);
    }
    const [off, len] = h as Hole;
    if (off < last || off + len > e.size) throw new HoldfastError('POOL_CORRUPT', `manifest entry ${e.path}: holes out of order or past the end`);
    last = off + len;
    holes += len;
  }
  if (data + holes !== e.size) {
    throw new HoldfastError('POOL_CORRUPT', `manifest entry ${e.path}: chunks and holes cover ${data + holes} bytes, size is ${e.size}`);
  }
}

export function decodeHeader(line: string): ManifestHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    raw = undefined;
  }
  const h = raw as Partial<ManifestHeader> | undefined;
  if (!h || h.holdfast !== 'manifest' || h.v !== MANIFEST_VERSION || (h.kind !== 'dir' && h.kind !== 'image')) {
    throw new HoldfastError('POOL_CORRUPT', 'manifest header is malformed or of an unknown version');
  }
  return { holdfast: 'manifest', v: MANIFEST_VERSION, kind: h.kind };
}

const HEX64 = /^[0-9a-f]{64}$/;

function isDigestText(x: unknown): x is string {
  return typeof x === 'string' && x.length === 64 && HEX64.test(x);
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Walks a file's layout: yields each chunk with its file offset, skipping holes. */
export function* chunkOffsets(e: FileEntry): Generator<{ ref: ChunkRef; offset: number }> {
  const holes = e.holes ?? [];
  let h = 0;
  let pos = 0;
  for (const ref of e.chunks) {
    while (h < holes.length && (holes[h] as Hole)[0] === pos) {
      pos += (holes[h] as Hole)[1];
      h++;
    }
    yield { ref, offset: pos };
    pos += ref[1];
  }
}
