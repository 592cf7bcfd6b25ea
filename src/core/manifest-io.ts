/**
 * Writing and reading manifest streams through the chunk seams. The JSON-lines stream is cut
 * with content-defined chunking, so a recovery point that changed little stores little; the page
 * lines of a paged entry are cut one to a chunk, so a page that did not change is the same chunk.
 */
import { cdcSplit, MANIFEST_CDC } from './chunker.js';
import { digestOf } from './digest.js';
import { encodeChunk, type EncodedChunk } from './codec.js';
import type { ChunkSink, ChunkSource, NewChunk } from './chunk-io.js';
import {
  checkContentShape,
  checkPageShape,
  decodeEntryLine,
  decodeHeader,
  decodePage,
  encodeLine,
  asFile,
  hasContent,
  joinPage,
  MANIFEST_VERSION,
  unpage,
  type ChunkRef,
  type Entry,
  type FileEntry,
  type Hole,
  type ManifestHeader,
  type PagedHead,
  type PageLine,
} from './manifest.js';
import { HoldfastError } from './errors.js';

/**
 * The files a manifest holds, by path, as `parentFiles` would read them back (a content-bearing
 * hard link as a file), kept while writing: up to `maxRefs` chunk references, else none at all.
 */
export interface KeptFiles {
  files: Map<string, FileEntry>;
  maxRefs: number;
  refs: number;
  /** false once the manifest outgrew maxRefs (files is then empty) */
  whole: boolean;
}

/**
 * Chunk references per page of a paged entry (an image's 16 KiB chunks: 1 MiB of image a page).
 * Smaller pages re-encode and re-check less around each change (a page is 64 references, about
 * 5 KB of text); larger ones keep the point's list of manifest chunks short. Past MAX_PAGES
 * pages the span doubles until the entry fits, so a point's manifest list stays under about
 * 2,000 references (150 KB in the catalog) whatever the image's size.
 */
export const PAGE_CHUNKS = 64;
export const MAX_PAGES = 2048;

/** The page span for a file of `size` bytes: `base`, doubled until the file has at most MAX_PAGES pages. */
export function pageSpanFor(size: number, base: number): number {
  let span = base;
  while (Math.ceil(size / span) > MAX_PAGES) span *= 2;
  return span;
}

/** Entries this large (in pages) on a page grid are written paged. */
const MIN_PAGES = 4;

/** The page span a file of `size` bytes is written with on a grid of `base`-byte pages, or undefined when it is written whole. */
export function pagedSpan(size: number, base: number): number | undefined {
  const span = pageSpanFor(size, base);
  return size > MIN_PAGES * span ? span : undefined;
}

/**
 * The pages a writer made, by entry path and offset, for the next manifest of the same source: a
 * page whose chunks and holes are equal to the kept one's is the same text, so its digest is
 * reused without encoding or hashing it again. Compared by value, so a stale cache costs only time.
 */
export class PageCache {
  private last = new Map<string, { page: PageLine; ref: ChunkRef }>();
  private next = new Map<string, { page: PageLine; ref: ChunkRef }>();

  lookup(path: string, p: PageLine): ChunkRef | undefined {
    const c = this.last.get(`${p.at}\0${path}`);
    return c && samePage(c.page, p) ? c.ref : undefined;
  }

  /** The kept page at `at` of `path` and its reference, whatever its content. */
  peek(path: string, at: number): { page: PageLine; ref: ChunkRef } | undefined {
    return this.last.get(`${at}\0${path}`);
  }

  record(path: string, p: PageLine, ref: ChunkRef): void {
    this.next.set(`${p.at}\0${path}`, { page: p, ref });
  }

  /** The manifest is written: its pages are the ones to compare the next manifest with. */
  rotate(): void {
    this.last = this.next;
    this.next = new Map();
  }
}

function samePage(a: PageLine, b: PageLine): boolean {
  if (a.at !== b.at || a.len !== b.len || a.chunks.length !== b.chunks.length || (a.holes?.length ?? 0) !== (b.holes?.length ?? 0)) return false;
  for (let i = 0; i < a.chunks.length; i++) {
    const x = a.chunks[i] as ChunkRef;
    const y = b.chunks[i] as ChunkRef;
    // The same reference object (an unchanged slot) is the common case: no string compared.
    if (x !== y && (x[0] !== y[0] || x[1] !== y[1])) return false;
  }
  const ah = a.holes ?? [];
  const bh = b.holes ?? [];
  return ah.every((h, i) => h[0] === bh[i]?.[0] && h[1] === bh[i]?.[1]);
}

/** The entry's content cut into pages of `span` bytes, or undefined when a chunk crosses a page boundary. */
export function pagesOf(e: FileEntry, span: number): PageLine[] | undefined {
  const pages: PageLine[] = [];
  const n = Math.ceil(e.size / span);
  for (let i = 0; i < n; i++) pages.push({ at: i * span, len: Math.min(span, e.size - i * span), chunks: [] });
  // chunkOffsets' walk, by hand: this runs over every reference of an image on every sync.
  const holes = e.holes ?? [];
  let h = 0;
  let pos = 0;
  for (let c = 0; c < e.chunks.length; c++) {
    const ref = e.chunks[c] as ChunkRef;
    while (h < holes.length && (holes[h] as Hole)[0] === pos) pos += (holes[h++] as Hole)[1];
    const i = Math.floor(pos / span);
    if (ref[1] === 0 || Math.floor((pos + ref[1] - 1) / span) !== i) return undefined;
    (pages[i] as PageLine).chunks.push(ref);
    pos += ref[1];
  }
  for (const [off, len] of holes) {
    for (let at = off; at < off + len; ) {
      const i = Math.floor(at / span);
      const end = Math.min(off + len, (i + 1) * span);
      const p = pages[i];
      if (!p) return undefined;
      (p.holes ??= []).push([at, end - at] satisfies Hole);
      at = end;
    }
  }
  return pages;
}

/**
 * The pages of a paged entry, made one at a time on demand: a page whose content is unchanged
 * since the cache's (`same`, checked without making it) is taken from the cache unmade. An
 * image's 2,048 pages hold 131,072 references: making them all anew every sync took 8 ms, and
 * 60 ms after an idle spell (1.5 MiB of new objects, in a heap the idle time had shrunk).
 */
export interface PageSource {
  count: number;
  page(i: number): PageLine;
  /** whether page i would be exactly `kept` (same chunks and holes, same place) */
  same(i: number, kept: PageLine): boolean;
}

const pageArray = (pages: PageLine[]): PageSource => ({ count: pages.length, page: (i) => pages[i] as PageLine, same: () => false });

export interface ManifestWriterOptions {
  keep?: KeptFiles;
  /** write file entries on this grid (an image's) paged, in pages of this many bytes */
  pageSpan?: number;
  /** the pages of this source's previous manifest, to reuse unchanged ones from */
  pages?: PageCache;
  /**
   * The manifest of the parent point the sink holds: a manifest chunk among its chunks is not
   * asked for again (the commit keeps a committed parent's chunks, docs/design.md "Garbage
   * collection and concurrent syncs"), so an image's unchanged pages cost no want.
   */
  parentManifest?: ChunkRef[];
}

export class ManifestWriter {
  private parts: Buffer[] = [];
  private bytes = 0;
  private readonly refs: ChunkRef[] = [];
  private readonly opts: ManifestWriterOptions;
  /** the parent manifest's chunk digests, made when first needed */
  private held: Set<string> | undefined;
  entries = 0;

  constructor(
    private readonly sink: ChunkSink,
    kind: ManifestHeader['kind'],
    opts: KeptFiles | ManifestWriterOptions = {},
  ) {
    this.opts = 'files' in opts ? { keep: opts } : opts;
    this.append(encodeLine({ holdfast: 'manifest', v: MANIFEST_VERSION, kind } satisfies ManifestHeader));
  }

  async add(e: Entry): Promise<void> {
    const span = this.opts.pageSpan && hasContent(e) ? pagedSpan(e.size, this.opts.pageSpan) : undefined;
    const pages = span && hasContent(e) ? pagesOf(e, span) : undefined;
    // Never commit an entry the reader would refuse: a bug here must fail the backup, not the restore.
    if (hasContent(e) && !pages) checkContentShape(e);
    this.entries++;
    const keep = this.opts.keep;
    if (keep?.whole && hasContent(e)) this.keepFile(keep, e);
    if (!pages || !span || !hasContent(e)) {
      this.append(encodeLine(e));
      if (this.bytes >= 4 * MANIFEST_CDC.max) await this.cut(false);
      return;
    }
    const { chunks: _chunks, holes: _holes, ...rest } = e;
    await this.writePaged(rest, span, pageArray(pages));
  }

  /**
   * A file entry already cut into the pages `pagedSpan` asks for (an image's slots, cut without
   * making its whole chunk list first); each page made is checked as `add` would.
   */
  async addPaged(head: Omit<FileEntry, 'chunks' | 'holes'>, span: number, pages: PageLine[] | PageSource): Promise<void> {
    const src = Array.isArray(pages) ? pageArray(pages) : pages;
    if (src.count !== Math.ceil(head.size / span)) throw this.offGrid(head, span);
    this.entries++;
    await this.writePaged(head, span, src);
  }

  private offGrid(head: Omit<FileEntry, 'chunks' | 'holes'>, span: number): HoldfastError {
    return new HoldfastError('POOL_CORRUPT', `manifest entry ${head.path}: its pages do not cover ${head.size} bytes in ${Math.ceil(head.size / span)} pages of ${span}`);
  }

  private async writePaged(head: Omit<FileEntry, 'chunks' | 'holes'>, span: number, pages: PageSource): Promise<void> {
    this.append(encodeLine({ ...head, pageSpan: span, pages: pages.count } satisfies Omit<PagedHead, 'chunks'>));
    // The text before the pages and the pages ask the sink together: one round trip, not two.
    const before = this.take(true);
    await Promise.all([this.store(before), this.addPages(head, span, pages)]);
  }

  /** One chunk per page: a page the cache knows unchanged is not encoded nor hashed again. */
  private async addPages(head: Omit<FileEntry, 'chunks' | 'holes'>, span: number, src: PageSource): Promise<void> {
    const path = head.path;
    const cache = this.opts.pages;
    const texts = new Map<number, Buffer>();
    const pages: PageLine[] = [];
    const refs: ChunkRef[] = [];
    for (let i = 0; i < src.count; i++) {
      const kept = cache?.peek(path, i * span);
      if (kept && src.same(i, kept.page)) {
        pages.push(kept.page);
        refs.push(kept.ref);
        continue;
      }
      const p = src.page(i);
      // The grid the reader will expect, checked here as `add` checks a whole entry.
      if (p.at !== i * span || p.len !== Math.min(span, head.size - p.at)) throw this.offGrid(head, span);
      if (p.holes?.length === 0) delete p.holes;
      pages.push(p);
      const known = cache?.lookup(path, p);
      if (known) {
        refs.push(known);
        continue;
      }
      checkPageShape(path, p);
      const text = Buffer.from(encodeLine(p), 'utf8');
      texts.set(i, text);
      refs.push([digestOf(text), text.length]);
    }
    // The new pages are compressed while the sink answers which it lacks (nearly all of them).
    const asked = this.want(refs.map((r) => r[0]));
    asked.catch(() => undefined); // awaited below
    const level = this.sink.compressionLevel;
    const encoded = new Map<number, EncodedChunk>();
    for (const [i, text] of texts) encoded.set(i, encodeChunk(text, level));
    const wanted = await asked;
    const fresh: NewChunk[] = [];
    refs.forEach((ref, i) => {
      cache?.record(path, pages[i] as PageLine, ref);
      if (!wanted[i]) return;
      // A reused page the sink lacks (another pool): the same text again.
      const enc = encoded.get(i) ?? encodeChunk(Buffer.from(encodeLine(pages[i] as PageLine), 'utf8'), level);
      fresh.push({ digest: ref[0], length: ref[1], encoded: enc, manifest: true });
    });
    if (fresh.length > 0) await this.sink.put(fresh);
    for (const r of refs) this.refs.push(r);
  }

  async finish(): Promise<ChunkRef[]> {
    await this.cut(true);
    this.opts.pages?.rotate();
    return this.refs;
  }

  /** The sink's want, except that chunks of the parent's manifest are not asked for (held). */
  private async want(digests: string[]): Promise<boolean[]> {
    const parent = this.opts.parentManifest;
    if (!parent) return this.sink.want(digests);
    this.held ??= new Set(parent.map((r) => r[0]));
    const held = this.held;
    const ask = digests.filter((d) => !held.has(d));
    const answers = await this.sink.want(ask);
    let k = 0;
    return digests.map((d) => !held.has(d) && answers[k++] === true);
  }

  private keepFile(k: KeptFiles, e: FileEntry): void {
    k.refs += e.chunks.length + 1;
    if (k.refs > k.maxRefs) {
      k.whole = false;
      k.files.clear();
      return;
    }
    k.files.set(e.path, asFile(e) as FileEntry);
  }

  private append(line: string): void {
    const b = Buffer.from(line, 'utf8');
    this.parts.push(b);
    this.bytes += b.length;
  }

  private async cut(final: boolean): Promise<void> {
    await this.store(this.take(final));
  }

  /** Cuts the buffered text into chunks, their references recorded now (in order); store() sends them. */
  private take(final: boolean): Array<{ digest: string; piece: Buffer }> {
    if (this.bytes === 0) return [];
    const buf = Buffer.concat(this.parts);
    const { lengths, rest } = cdcSplit(buf, MANIFEST_CDC, final);
    const cut: Array<{ digest: string; piece: Buffer }> = [];
    let pos = 0;
    for (const len of lengths) {
      const piece = buf.subarray(pos, pos + len);
      pos += len;
      const digest = digestOf(piece);
      this.refs.push([digest, len]);
      cut.push({ digest, piece });
    }
    const tail = buf.subarray(buf.length - rest);
    this.parts = rest > 0 ? [Buffer.from(tail)] : [];
    this.bytes = rest;
    return cut;
  }

  /** Puts the chunks of a cut that the sink lacks. */
  private async store(cut: Array<{ digest: string; piece: Buffer }>): Promise<void> {
    if (cut.length === 0) return;
    const wanted = await this.want(cut.map((c) => c.digest));
    const level = this.sink.compressionLevel;
    const fresh: NewChunk[] = [];
    cut.forEach((c, i) => {
      if (wanted[i]) fresh.push({ digest: c.digest, length: c.piece.length, encoded: encodeChunk(Buffer.from(c.piece), level), manifest: true });
    });
    if (fresh.length > 0) await this.sink.put(fresh);
  }
}

/** A page's place in the manifest being walked: the file offset and span it must cover. */
export interface PageSpan {
  at: number;
  len: number;
}

export type ManifestEvent =
  /** an entry; a paged one with its pages joined (when walked with `join`) */
  | { kind: 'entry'; entry: Entry }
  /** the head line of a paged entry (when walked without `join`): its pages follow */
  | { kind: 'head'; head: PagedHead }
  /** a page read and checked (when walked without `join`) */
  | { kind: 'page'; head: PagedHead; page: PageLine };

export interface WalkOptions {
  signal?: AbortSignal;
  /** join each paged entry's pages into it and yield it as one entry */
  join?: boolean;
  /**
   * Page chunks already checked, by digest (the parent point's): a chunk found here, standing
   * alone where a page of the same span is due, is skipped unread.
   */
  known?: Map<string, PageSpan>;
  /** each page that is exactly one chunk, read or skipped: the caller may remember it as checked */
  onPage?: (digest: string, span: PageSpan) => void;
  /** read requests in flight ahead of the walk (default 32; 0 reads a chunk only when it is due) */
  readAhead?: number;
}

/** Reads chunks ahead of the walk, 16 to a request and up to 32 in flight, leaving out those it may skip. */
class Prefetch {
  private readonly pending = new Map<number, Promise<Uint8Array>>();
  /** the first index not yet considered for reading ahead */
  private ahead = 0;

  constructor(
    private readonly source: ChunkSource,
    private readonly refs: ChunkRef[],
    private readonly skippable: (i: number) => boolean,
    private readonly signal?: AbortSignal,
    private readonly inFlight = 32,
  ) {}

  /** Chunk i's plaintext (read now if it was left out as skippable and is needed after all). */
  async get(i: number): Promise<Uint8Array> {
    if (!this.pending.has(i)) this.read([i]);
    this.ahead = Math.max(this.ahead, i + 1);
    while (this.ahead < this.refs.length && this.pending.size < this.inFlight) {
      const idx: number[] = [];
      for (; this.ahead < this.refs.length && idx.length < 16; this.ahead++) if (!this.skippable(this.ahead)) idx.push(this.ahead);
      if (idx.length > 0) this.read(idx);
    }
    const p = this.pending.get(i) as Promise<Uint8Array>;
    this.pending.delete(i);
    return p;
  }

  private read(idx: number[]): void {
    const got = this.source.read(idx.map((k) => this.refs[k] as ChunkRef), this.signal);
    idx.forEach((k, j) => {
      const one = got.then((b) => b[j] as Uint8Array);
      one.catch(() => undefined); // thrown where it is awaited; a walk that stopped early never awaits it
      this.pending.set(k, one);
    });
  }
}

/** Streams a manifest's lines as events, checking each; the header is checked first. */
export async function* walkManifest(source: ChunkSource, refs: ChunkRef[], o: WalkOptions = {}): AsyncGenerator<ManifestEvent> {
  // Lines are gathered as bytes: an image's one long line (version 1) must not be rebuilt per chunk.
  let parts: Buffer[] = [];
  let header: ManifestHeader | undefined;
  let head: PagedHead | undefined;
  let page = 0;
  const known = o.known;
  const due = (): PageSpan | undefined => (head ? { at: page * head.pageSpan, len: Math.min(head.pageSpan, head.size - page * head.pageSpan) } : undefined);
  const reader = new Prefetch(source, refs, (i) => known?.has((refs[i] as ChunkRef)[0]) === true, o.signal, o.readAhead);
  for (let i = 0; i < refs.length; i++) {
    const [digest] = refs[i] as ChunkRef;
    const k = known?.get(digest);
    const want = parts.length === 0 ? due() : undefined;
    if (k && want && k.at === want.at && k.len === want.len && head) {
      o.onPage?.(digest, want);
      if (++page === head.pages) head = undefined;
      continue;
    }
    const c = await reader.get(i);
    const buf = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    let start = 0;
    let nl: number;
    while ((nl = buf.indexOf(10, start)) >= 0) {
      const whole = parts.length === 0 && start === 0 && nl === buf.length - 1;
      parts.push(buf.subarray(start, nl));
      const line = (parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts)).toString('utf8');
      parts = [];
      start = nl + 1;
      if (!header) {
        header = decodeHeader(line);
        continue;
      }
      if (head) {
        const p = decodePage(line, head, page);
        if (whole) o.onPage?.(digest, { at: p.at, len: p.len });
        if (o.join) joinPage(head, p);
        else yield { kind: 'page', head, page: p };
        if (++page === head.pages) {
          if (o.join) yield { kind: 'entry', entry: unpage(head) };
          head = undefined;
        }
        continue;
      }
      const e = decodeEntryLine(line, header.v);
      if (!('pageSpan' in e)) {
        yield { kind: 'entry', entry: e };
        continue;
      }
      page = 0;
      if (e.pages === 0) {
        yield o.join ? { kind: 'entry', entry: unpage(e) } : { kind: 'head', head: e };
        continue;
      }
      head = e;
      if (!o.join) yield { kind: 'head', head: e };
    }
    if (start < buf.length) parts.push(buf.subarray(start));
  }
  if (parts.length > 0) throw new HoldfastError('POOL_CORRUPT', 'manifest ends in the middle of a line');
  if (!header) throw new HoldfastError('POOL_CORRUPT', 'manifest is empty');
  if (head) throw new HoldfastError('POOL_CORRUPT', `manifest ends before the last page of ${head.path}`);
}

/**
 * A manifest's first entry without its pages (a paged entry's chunks and holes are left empty),
 * reading only the chunks up to it: enough to see that an image did not change (a 2 GiB image's
 * pages are 9.5 MiB to read and check).
 */
export async function firstEntryHead(source: ChunkSource, refs: ChunkRef[], signal?: AbortSignal): Promise<FileEntry | undefined> {
  for await (const ev of walkManifest(source, refs, { signal, readAhead: 0 })) {
    if (ev.kind === 'head') return unpage(ev.head);
    if (ev.kind === 'entry') return ev.entry.type === 'file' ? ev.entry : undefined;
  }
  return undefined;
}

/**
 * Every chunk reference a manifest holds: its own chunks', then each entry's and page's. Pages in
 * `seen` are skipped unread and the pages walked are added to it: a caller that walks several
 * manifests (a source's points, whose unchanged pages are the same chunks) and keeps what each
 * reference told it reads each page once. Pages are not joined into their entries.
 */
export async function forEachManifestRef(source: ChunkSource, refs: ChunkRef[], fn: (digest: string, length: number) => void, o: { signal?: AbortSignal; seen?: Map<string, PageSpan> } = {}): Promise<void> {
  for (const [d, l] of refs) fn(d, l);
  const seen = o.seen;
  const walk = walkManifest(source, refs, { signal: o.signal, known: seen, onPage: seen && ((d, span) => seen.set(d, span)) });
  for await (const ev of walk) {
    const chunks = ev.kind === 'page' ? ev.page.chunks : ev.kind === 'entry' && hasContent(ev.entry) ? ev.entry.chunks : undefined;
    if (chunks) for (const [d, l] of chunks) fn(d, l);
  }
}

/** Streams a manifest's entries in order, paged ones joined; the header is checked first. */
export async function* readManifest(source: ChunkSource, refs: ChunkRef[], signal?: AbortSignal): AsyncGenerator<Entry> {
  for await (const ev of walkManifest(source, refs, { signal, join: true })) if (ev.kind === 'entry') yield ev.entry;
}
