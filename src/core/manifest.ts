/**
 * Manifest entries: what rebuilds one data source at one time. A manifest is a stream of JSON
 * lines (a header, then one entry per filesystem object in walk order: parents before children,
 * names sorted), cut into chunks and stored in the pool like data. Images are one `file` entry.
 */
import { checkEntryPath } from './entry-path.js';
import { HoldfastError } from './errors.js';

/** Version 2 adds paged chunk lists (below); version 1 manifests are still read. */
export const MANIFEST_VERSION = 2;

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
  v: 1 | 2;
  kind: 'dir' | 'image';
}

/**
 * A large file on a fixed grid (an image) may be written with its chunk list in pages (v2): the
 * entry line carries `pageSpan` and `pages` instead of `chunks` and `holes`, and is followed by
 * `pages` page lines, page i holding the chunks and holes of bytes [i·pageSpan, (i+1)·pageSpan).
 * Each page line is a manifest chunk of its own, so a page nothing changed in keeps its digest:
 * the agent need not encode it again, nor the server read and check it again (docs/design.md,
 * "Manifests"). Readers join the pages back into one entry.
 */
export interface PageLine {
  /** the file offset the page starts at, and its byte span */
  at: number;
  len: number;
  chunks: ChunkRef[];
  /** file offsets, inside [at, at + len) */
  holes?: Hole[];
}

/** An entry line whose chunk list follows in page lines. */
export type PagedHead = FileEntry & { pageSpan: number; pages: number };

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

/** An entry as the file a parent's files hold it as: a content-bearing hard link counts as a file. */
export function asFile(e: Entry): FileEntry | undefined {
  if (e.type === 'file') return e;
  return hasContent(e) ? { ...e, type: 'file' } : undefined;
}

export function encodeLine(obj: object): string {
  return `${JSON.stringify(obj)}\n`;
}

function parseLine(line: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (err) {
    throw new HoldfastError('POOL_CORRUPT', `manifest line is not JSON: ${line.slice(0, 80)}`, {}, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new HoldfastError('POOL_CORRUPT', `manifest line is not an object: ${line.slice(0, 80)}`);
  return raw as Record<string, unknown>;
}

/**
 * Parses and checks one entry line of a manifest of version `v`; a crafted or damaged manifest is
 * refused here. The result is an entry, or (v2) the head of a paged entry, whose `chunks` stay
 * empty until its page lines are joined to it (joinPage).
 */
export function decodeEntryLine(line: string, v: 1 | 2): Entry | PagedHead {
  const raw = parseLine(line);
  const paged = v === 2 && raw.pageSpan !== undefined;
  if (paged && raw.type !== 'file' && raw.type !== 'hardlink') throw new HoldfastError('POOL_CORRUPT', `manifest entry is malformed: pages on a ${String(raw.type)} in ${line.slice(0, 120)}`);
  if (paged) {
    if (raw.chunks !== undefined || raw.holes !== undefined) throw new HoldfastError('POOL_CORRUPT', `manifest entry is malformed: a paged entry holds chunks or holes in ${line.slice(0, 120)}`);
    raw.chunks = [];
  }
  const problem = shapeError(raw);
  if (problem) throw new HoldfastError('POOL_CORRUPT', `manifest entry is malformed: ${problem} in ${line.slice(0, 120)}`);
  const e = raw as unknown as Entry;
  checkEntryPath(e.path);
  if (e.type === 'hardlink') checkEntryPath(e.target);
  if (!hasContent(e)) return e;
  if (!paged) {
    checkContentShape(e);
    return e;
  }
  const h = e as PagedHead;
  if (!isCount(h.pageSpan) || h.pageSpan === 0 || !isCount(h.pages) || h.pages !== Math.ceil(h.size / h.pageSpan)) {
    throw new HoldfastError('POOL_CORRUPT', `manifest entry ${h.path}: ${h.pages} pages of ${h.pageSpan} bytes do not fit size ${h.size}`);
  }
  return h;
}

/** Page `index` of `head`'s chunk list: checked to cover exactly its span, chunks and holes. */
export function decodePage(line: string, head: PagedHead, index: number): PageLine {
  const raw = parseLine(line);
  const at = index * head.pageSpan;
  const len = Math.min(head.pageSpan, head.size - at);
  if (raw.at !== at || raw.len !== len) throw new HoldfastError('POOL_CORRUPT', `manifest entry ${head.path}: page ${index} should cover [${at}, ${at + len}), not [${String(raw.at)}, +${String(raw.len)})`);
  if (!Array.isArray(raw.chunks) || (raw.holes !== undefined && !Array.isArray(raw.holes))) throw new HoldfastError('POOL_CORRUPT', `manifest entry ${head.path}: page ${index} is malformed`);
  const p = raw as unknown as PageLine;
  checkSpan(head.path, p.chunks, p.holes ?? [], at, len);
  return p;
}

/** Adds a checked page to its head: chunks in order, a hole that goes on from the last one merged. */
export function joinPage(head: PagedHead, p: PageLine): void {
  for (const c of p.chunks) head.chunks.push(c);
  for (const h of p.holes ?? []) {
    const holes = (head.holes ??= []);
    const last = holes[holes.length - 1];
    if (last && last[0] + last[1] === h[0]) last[1] += h[1];
    else holes.push([h[0], h[1]]);
  }
}

/** A joined paged entry as an ordinary one. */
export function unpage(head: PagedHead): FileEntry {
  const { pageSpan: _span, pages: _pages, ...e } = head;
  return e;
}

/** Chunks plus holes must cover exactly `size` bytes, holes in order and inside the file. */
export function checkContentShape(e: FileEntry): void {
  checkSpan(e.path, e.chunks, e.holes ?? [], 0, e.size);
}

/**
 * A page about to be written: the same check as a read page gets, except that digests are only
 * checked to be 64 characters (they come from our own hashing; the full check costs about half a
 * microsecond a reference, and the reader makes it anyway).
 */
export function checkPageShape(path: string, p: PageLine): void {
  checkSpan(path, p.chunks, p.holes ?? [], p.at, p.len, false);
}

/** Chunks plus holes cover exactly [at, at + len), holes in order and inside it. */
function checkSpan(path: string, chunks: unknown[], holeList: unknown[], at: number, len: number, hexDigests = true): void {
  let data = 0;
  for (const ref of chunks) {
    if (!Array.isArray(ref) || ref.length !== 2 || !(hexDigests ? isDigestText(ref[0]) : typeof ref[0] === 'string' && ref[0].length === 64) || !isCount(ref[1])) {
      throw new HoldfastError('POOL_CORRUPT', `manifest entry ${path}: malformed chunk reference ${JSON.stringify(ref)?.slice(0, 100)}`);
    }
    data += ref[1];
  }
  let holes = 0;
  let last = at;
  for (const h of holeList) {
    if (!Array.isArray(h) || h.length !== 2 || !isCount(h[0]) || !isCount(h[1]) || h[1] === 0) {
      throw new HoldfastError('POOL_CORRUPT', `manifest entry ${path}: malformed hole ${JSON.stringify(h)?.slice(0, 100)}`);
    }
    const [off, n] = h as Hole;
    if (off < last || off + n > at + len) throw new HoldfastError('POOL_CORRUPT', `manifest entry ${path}: holes out of order or past the end`);
    last = off + n;
    holes += n;
  }
  if (data + holes !== len) {
    const what = at === 0 ? `size is ${len}` : `the page [${at}, ${at + len}) is ${len} bytes`;
    throw new HoldfastError('POOL_CORRUPT', `manifest entry ${path}: chunks and holes cover ${data + holes} bytes, ${what}`);
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
  if (!h || h.holdfast !== 'manifest' || (h.v !== 1 && h.v !== 2) || (h.kind !== 'dir' && h.kind !== 'image')) {
    throw new HoldfastError('POOL_CORRUPT', 'manifest header is malformed or of an unknown version');
  }
  return { holdfast: 'manifest', v: h.v, kind: h.kind };
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
