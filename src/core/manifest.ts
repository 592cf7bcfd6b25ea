/**
 * Manifest entries: what rebuilds one data source at one time. A manifest is a stream of JSON
 * lines (a header, then one entry per filesystem object in walk order: parents before children,
 * names sorted), cut into chunks and stored in the pool like data. Images are one `file` entry.
 */
import { z } from 'zod';
import { checkEntryPath } from './entry-path.js';
import { HoldfastError } from './errors.js';

export const MANIFEST_VERSION = 1;

/** [digest, plaintext length] */
export type ChunkRef = [string, number];
/** [offset, length] of a sparse hole */
export type Hole = [number, number];

// Chunk and hole lists can hold a hundred thousand pairs: they are checked by hand in
// checkContentShape (a schema per pair costs more than the rest of the entry).
const chunkRef = z.custom<[string, number]>(() => true);
const hole = z.custom<[number, number]>(() => true);
const nsString = z.string().regex(/^\d{1,25}$/);

const base = {
  path: z.string(),
  mode: z.number().int().min(0).max(0o7777),
  uid: z.number().int().nonnegative(),
  gid: z.number().int().nonnegative(),
  mtimeNs: nsString,
  ctimeNs: nsString.optional(),
  atimeNs: nsString.optional(),
  /** name → base64 value; includes system.posix_acl_access / _default */
  xattrs: z.record(z.string(), z.string()).optional(),
};

const content = {
  size: z.number().int().nonnegative(),
  ino: z.number().int().nonnegative().optional(),
  chunks: z.array(chunkRef),
  holes: z.array(hole).optional(),
  /** the file changed on every read attempt; stored as last read */
  torn: z.boolean().optional(),
};

export const entrySchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('file'), ...base, ...content }),
  z.object({ type: z.literal('hardlink'), ...base, ...content, target: z.string() }),
  z.object({ type: z.literal('dir'), ...base }),
  z.object({ type: z.literal('symlink'), ...base, target: z.string() }),
  z.object({ type: z.literal('fifo'), ...base }),
  z.object({ type: z.literal('socket'), ...base }),
  z.object({ type: z.literal('chardev'), ...base, rdev: z.number().int().nonnegative() }),
  z.object({ type: z.literal('blockdev'), ...base, rdev: z.number().int().nonnegative() }),
]);

export type Entry = z.infer<typeof entrySchema>;
export type FileEntry = Extract<Entry, { type: 'file' | 'hardlink' }>;

export const manifestHeaderSchema = z.object({
  holdfast: z.literal('manifest'),
  v: z.literal(MANIFEST_VERSION),
  kind: z.enum(['dir', 'image']),
});
export type ManifestHeader = z.infer<typeof manifestHeaderSchema>;

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
  const parsed = entrySchema.safeParse(raw);
  if (!parsed.success) {
    throw new HoldfastError('POOL_CORRUPT', `manifest entry is malformed: ${parsed.error.issues[0]?.message ?? ''} in ${line.slice(0, 120)}`);
  }
  const e = parsed.data;
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
  const parsed = manifestHeaderSchema.safeParse(raw);
  if (!parsed.success) throw new HoldfastError('POOL_CORRUPT', 'manifest header is malformed or of an unknown version');
  return parsed.data;
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
