import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ChunkSink, ChunkSource, NewChunk } from './chunk-io.js';
import { decodeChunk, type StoredChunk } from './codec.js';
import { firstEntryHead, forEachManifestRef, ManifestWriter, MAX_PAGES, PageCache, pageSpanFor, pagesOf, readManifest, walkManifest, type KeptFiles, type PageSpan } from './manifest-io.js';
import { hasContent, type ChunkRef, type Entry, type FileEntry, type PageLine } from './manifest.js';

/** Chunks in memory, as the pool keeps them. */
class Store implements ChunkSink, ChunkSource {
  readonly compressionLevel = 0;
  readonly chunks = new Map<string, NewChunk>();
  want(digests: string[]): Promise<boolean[]> {
    return Promise.resolve(digests.map((d) => !this.chunks.has(d)));
  }
  put(chunks: NewChunk[]): Promise<void> {
    // A sink copies what it keeps: the caller reuses the bytes once put() settles.
    for (const c of chunks) this.chunks.set(c.digest, { ...c, encoded: { flags: c.encoded.flags, data: Buffer.from(c.encoded.data) } });
    return Promise.resolve();
  }
  read(refs: ChunkRef[]): Promise<Uint8Array[]> {
    return Promise.resolve(
      refs.map(([digest, length]) => {
        const c = this.chunks.get(digest) as NewChunk;
        const r = decodeChunk(c.encoded.data, c.encoded.flags, length, digest);
        if (!r.ok) throw new Error(r.reason);
        return r.data;
      }),
    );
  }
  readEncoded(refs: ChunkRef[]): Promise<StoredChunk[]> {
    return Promise.resolve(refs.map(([digest, length]) => ({ digest, length, ...(this.chunks.get(digest) as NewChunk).encoded })));
  }
}

const meta = { mode: 0o644, uid: 0, gid: 0, mtimeNs: '1' };
const ref = (i: number): ChunkRef => [createHash('sha256').update(String(i)).digest('hex'), 16384];
const entries = (files: number, refsEach: number): Entry[] => [
  { type: 'dir', path: 'd', ...meta },
  ...Array.from({ length: files }, (_, f): Entry => ({ type: 'file', path: `d/f${f}`, ...meta, size: refsEach * 16384, chunks: Array.from({ length: refsEach }, (_, i) => ref(f * 1000 + i)) })),
  { type: 'hardlink', path: 'd/link', target: 'd/f0', ...meta, size: refsEach * 16384, chunks: Array.from({ length: refsEach }, (_, i) => ref(i)) },
];

async function write(es: Entry[], keep: KeptFiles): Promise<{ store: Store; refs: ChunkRef[] }> {
  const store = new Store();
  const w = new ManifestWriter(store, 'dir', keep);
  for (const e of es) await w.add(e);
  return { store, refs: await w.finish() };
}

test('the files kept while writing are the files the manifest reads back as (a hard link as a file)', async () => {
  const keep: KeptFiles = { files: new Map(), maxRefs: 10_000, refs: 0, whole: true };
  const { store, refs } = await write(entries(20, 300), keep);
  const back = new Map<string, FileEntry>();
  for await (const e of readManifest(store, refs)) if (hasContent(e)) back.set(e.path, { ...e, type: 'file' });
  assert.equal(keep.whole, true);
  assert.equal(back.size, 21);
  assert.deepEqual(new Map([...keep.files].map(([p, e]) => [p, JSON.parse(JSON.stringify(e)) as FileEntry])), back);
});

test('a manifest with more chunk references than the bound keeps no files', async () => {
  const keep: KeptFiles = { files: new Map(), maxRefs: 1000, refs: 0, whole: true };
  await write(entries(20, 300), keep);
  assert.equal(keep.whole, false);
  assert.equal(keep.files.size, 0);
});

// Paged chunk lists (manifest v2): an image's chunk list in pages of PAGE span, one chunk each.

const SPAN = 4 * 16384;
/** An image of `slots` 16 KiB slots: slot i holds chunk `seed + i`, or a hole where `hole(i)`. */
function image(slots: number, seed: number, hole: (i: number) => boolean, tail = 16384): FileEntry {
  const chunks: ChunkRef[] = [];
  const holes: Array<[number, number]> = [];
  for (let i = 0; i < slots; i++) {
    const len = i === slots - 1 ? tail : 16384;
    if (!hole(i)) chunks.push([ref(seed + i)[0], len]);
    else {
      const last = holes[holes.length - 1];
      if (last && last[0] + last[1] === i * 16384) last[1] += len;
      else holes.push([i * 16384, len]);
    }
  }
  return { type: 'file', path: 'disk.img', ...meta, size: (slots - 1) * 16384 + tail, chunks, ...(holes.length > 0 ? { holes } : {}) };
}

/** Counts what a store is asked for. */
class CountingStore extends Store {
  reads = 0;
  puts = 0;
  override read(refs: ChunkRef[]): Promise<Uint8Array[]> {
    this.reads += refs.length;
    return super.read(refs);
  }
  override put(chunks: NewChunk[]): Promise<void> {
    this.puts += chunks.length;
    return super.put(chunks);
  }
}

async function writeImage(store: Store, e: FileEntry, pages?: PageCache): Promise<ChunkRef[]> {
  const w = new ManifestWriter(store, 'image', { pageSpan: SPAN, pages });
  await w.add(e);
  return w.finish();
}

async function readAll(store: Store, refs: ChunkRef[]): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const e of readManifest(store, refs)) out.push(e);
  return out;
}

test('a paged image entry reads back equal to the entry written, holes across page boundaries joined', async () => {
  const store = new Store();
  // 22 slots: pages of 4 slots, a short last page and a short last slot; holes spanning pages.
  const e = image(22, 0, (i) => (i >= 3 && i <= 9) || i === 15 || i === 21, 100);
  const refs = await writeImage(store, e);
  // header and head line, then one chunk per page
  assert.equal(refs.length, 1 + Math.ceil(e.size / SPAN));
  assert.deepEqual(await readAll(store, refs), [e]);
});

test('an entry not on the page grid, or small, is written inline', async () => {
  const store = new Store();
  const small = image(8, 0, () => false);
  assert.equal((await writeImage(store, small)).length, 1);
  const offGrid: FileEntry = { ...image(40, 0, () => false), chunks: [] };
  offGrid.chunks = Array.from({ length: 32 }, (_, i): ChunkRef => [ref(500 + i)[0], 20480]);
  offGrid.size = 32 * 20480;
  const refs = await writeImage(store, offGrid);
  assert.deepEqual(await readAll(store, refs), [offGrid]);
  assert.equal(refs.length, 1);
});

test('a second manifest with one slot changed stores one new page, and the page cache encodes only that page', async () => {
  const store = new CountingStore();
  const cache = new PageCache();
  const a = image(64, 0, (i) => i % 7 === 0);
  const first = await writeImage(store, a, cache);
  const b = image(64, 0, (i) => i % 7 === 0);
  b.chunks[18] = [ref(9999)[0], 16384]; // slot 22 (slots 0, 7, 14 and 21 are holes): page 5
  // The cache answers for the unchanged pages (not encoded nor hashed again), not for the changed one.
  const pages = pagesOf(b, SPAN) as PageLine[];
  assert.deepEqual(cache.lookup('disk.img', pages[4] as PageLine), first[1 + 4]);
  assert.equal(cache.lookup('disk.img', pages[5] as PageLine), undefined);
  store.puts = 0;
  const second = await writeImage(store, b, cache);
  assert.equal(store.puts, 1, 'only the changed page (the head line is the same)');
  assert.deepEqual(second.map((r, i) => r[0] !== first[i]?.[0]).indexOf(true), 1 + 5);
  assert.equal(second.filter((r, i) => r[0] !== first[i]?.[0]).length, 1);
  assert.deepEqual(await readAll(store, second), [b]);
  // A stale cache is harmless: a page it knows but the store lacks is encoded again.
  const other = new Store();
  const third = await writeImage(other, b, cache);
  assert.deepEqual(third, second);
  assert.deepEqual(await readAll(other, third), [b]);
});

test("pages among the parent's manifest chunks are not asked for again; new ones are, and are marked as manifest chunks", async () => {
  const store = new CountingStore();
  const a = image(64, 0, () => false);
  const first = await writeImage(store, a, new PageCache());
  const b = image(64, 0, () => false);
  b.chunks[30] = [ref(7777)[0], 16384]; // page 7
  const asked: string[] = [];
  const marked: boolean[] = [];
  const sink: ChunkSink = {
    compressionLevel: 0,
    want: (d) => {
      asked.push(...d);
      return store.want(d);
    },
    put: (cs) => {
      marked.push(...cs.map((c) => c.manifest === true));
      return store.put(cs);
    },
  };
  const w = new ManifestWriter(sink, 'image', { pageSpan: SPAN, parentManifest: first });
  await w.add(b);
  const second = await w.finish();
  const changed = second.filter((r, i) => r[0] !== first[i]?.[0]).map((r) => r[0]);
  assert.deepEqual(changed, [(second[1 + 7] as ChunkRef)[0]]);
  assert.deepEqual(asked.filter((d) => second.some((r) => r[0] === d)), changed, 'of the manifest chunks, only the new page was asked for');
  assert.deepEqual(marked, [true]);
  assert.deepEqual(await readAll(store, second), [b]);
});

test('a walk skips known pages where they stand, and reads and checks one moved elsewhere', async () => {
  const store = new CountingStore();
  const e = image(64, 0, () => false);
  const refs = await writeImage(store, e);
  const known = new Map<string, { at: number; len: number }>();
  for await (const _ of walkManifest(store, refs, { onPage: (d, s) => known.set(d, s) })) void _;
  assert.equal(known.size, 16);
  store.reads = 0;
  const pages: number[] = [];
  for await (const ev of walkManifest(store, refs, { known })) if (ev.kind === 'page') pages.push(ev.page.at);
  assert.deepEqual(pages, []);
  assert.equal(store.reads, 1, 'only the chunk with the header and head line');
  // Two known pages swapped: each is read where it does not belong, and refused.
  const swapped = [...refs];
  [swapped[2], swapped[3]] = [swapped[3] as ChunkRef, swapped[2] as ChunkRef];
  await assert.rejects(async () => {
    for await (const _ of walkManifest(store, swapped, { known })) void _;
  }, /page 1 should cover \[65536, 131072\)/);
});

test("forEachManifestRef with the pages seen reads each of a source's pages once and names the same references", async () => {
  const store = new CountingStore();
  const cache = new PageCache();
  // Three points of one image, each with one more slot changed; a directory point beside them.
  const points: ChunkRef[][] = [];
  const e = image(64, 0, (i) => i % 9 === 0);
  for (const slot of [-1, 18, 40]) {
    if (slot >= 0) e.chunks[slot] = [ref(7000 + slot)[0], 16384];
    points.push(await writeImage(store, { ...e, chunks: [...e.chunks] }, cache));
  }
  const dir = await write(entries(3, 5), { files: new Map(), maxRefs: 100, refs: 0, whole: true });
  points.push(dir.refs);
  for (const [d, c] of dir.store.chunks) store.chunks.set(d, c);
  const each = async (seen?: Map<string, PageSpan>): Promise<Array<Set<string>>> => {
    const out: Array<Set<string>> = [];
    for (const refs of points) {
      const set = new Set<string>();
      await forEachManifestRef(store, refs, (d) => set.add(d), { seen });
      out.push(set);
    }
    return out;
  };
  store.reads = 0;
  const whole = await each();
  const readsWhole = store.reads;
  store.reads = 0;
  const seen = new Map<string, PageSpan>();
  const skipping = await each(seen);
  const readsSkipping = store.reads;
  // What a point needs, counted over the points in order, is the same either way.
  const union = (sets: Array<Set<string>>): string[] => [...new Set(sets.flatMap((x) => [...x]))].sort();
  assert.deepEqual(union(skipping), union(whole));
  assert.deepEqual(skipping[0], whole[0]);
  // Each point's references are its pages, its slots' chunks and its own manifest chunks.
  const expect = new Set<string>([...points[1]!.map((r) => r[0]), ...(await readAll(store, points[1]!)).flatMap((x) => (hasContent(x) ? x.chunks.map((c) => c[0]) : []))]);
  assert.deepEqual(whole[1], expect);
  assert.equal(seen.size, 16 + 2, "the first point's 16 pages and one new page for each later point");
  // The first point reads its 16 pages and its head; the later ones only their head and their new page.
  assert.equal(readsWhole - readsSkipping, 2 * 15);
});

test('crafted paged manifests are refused: wrong spans, a page count that does not fit, pages on a directory, a missing page', async () => {
  const store = new Store();
  const enc = (lines: object[]): ChunkRef[] => {
    const buf = Buffer.from(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    const digest = createHash('sha256').update(buf).digest('hex');
    store.chunks.set(digest, { digest, length: buf.length, encoded: { flags: 0, data: buf } });
    return [[digest, buf.length]];
  };
  const header = { holdfast: 'manifest', v: 2, kind: 'image' };
  const head = { type: 'file', path: 'disk.img', ...meta, size: 2 * SPAN, pageSpan: SPAN, pages: 2 };
  const full = (at: number): object => ({ at, len: SPAN, chunks: [[ref(at)[0], SPAN]] });
  const bad = async (lines: object[], re: RegExp): Promise<void> => {
    await assert.rejects(() => readAll(store, enc(lines)), re);
  };
  assert.equal((await readAll(store, enc([header, head, full(0), full(SPAN)]))).length, 1);
  await bad([header, head, full(0), full(0)], /page 1 should cover/);
  await bad([header, head, full(0), { at: SPAN, len: SPAN, chunks: [[ref(1)[0], SPAN - 1]] }], /cover 65535 bytes/);
  await bad([header, head, full(0), { at: SPAN, len: SPAN, chunks: [], holes: [[0, SPAN]] }], /holes out of order/);
  await bad([header, { ...head, pages: 3 }, full(0), full(SPAN)], /3 pages of 65536 bytes do not fit/);
  await bad([header, { ...head, chunks: [] }, full(0), full(SPAN)], /a paged entry holds chunks/);
  await bad([header, { type: 'dir', path: 'd', ...meta, pageSpan: SPAN, pages: 0 }], /pages on a dir/);
  await bad([header, head, full(0)], /ends before the last page/);
  await bad([{ ...header, v: 1 }, head, full(0), full(SPAN)], /chunks is missing/);
  // Chunk references that are not lowercase digest text, plain or written with escapes.
  const hex = ref(1)[0];
  await bad([header, head, full(0), { at: SPAN, len: SPAN, chunks: [[hex.toUpperCase(), SPAN]] }], /malformed chunk reference/);
  await bad([header, head, full(0), { at: SPAN, len: SPAN, chunks: [['x'.repeat(64), SPAN]] }], /malformed chunk reference/);
  await bad([header, head, full(0), { at: SPAN, len: SPAN, chunks: [[hex.slice(1), SPAN]] }], /malformed chunk reference/);
  const raw = (line: string): ChunkRef[] => {
    const buf = Buffer.from([header, head, full(0)].map((l) => `${JSON.stringify(l)}\n`).join('') + `${line}\n`);
    const digest = createHash('sha256').update(buf).digest('hex');
    store.chunks.set(digest, { digest, length: buf.length, encoded: { flags: 0, data: buf } });
    return [[digest, buf.length]];
  };
  await assert.rejects(() => readAll(store, raw(`{"at":${SPAN},"len":${SPAN},"chunks":[["\\u0041${hex.slice(1)}",${SPAN}]]}`)), /malformed chunk reference/);
  // The same digest escaped in lowercase is its own text: accepted, as JSON reads it.
  assert.equal((await readAll(store, raw(`{"at":${SPAN},"len":${SPAN},"chunks":[["\\u00${hex.charCodeAt(0).toString(16)}${hex.slice(1)}",${SPAN}]]}`))).length, 1);
});

test('a file with more pages than MAX_PAGES gets a doubled page span, and reads back the same', async () => {
  assert.equal(pageSpanFor(MAX_PAGES * SPAN, SPAN), SPAN);
  assert.equal(pageSpanFor(MAX_PAGES * SPAN + 1, SPAN), 2 * SPAN);
  assert.equal(pageSpanFor(5 * MAX_PAGES * SPAN, SPAN), 8 * SPAN);
  const store = new Store();
  // 4 slots a page at SPAN: MAX_PAGES * 4 + 4 slots need pages twice as large.
  const e = image(MAX_PAGES * 4 + 4, 0, (i) => i % 9 === 0);
  const refs = await writeImage(store, e);
  assert.equal(refs.length, 1 + Math.ceil(e.size / (2 * SPAN)));
  assert.deepEqual(await readAll(store, refs), [e]);
});

test("firstEntryHead reads a paged image's head, not its pages; an inline entry comes whole", async () => {
  const store = new CountingStore();
  const e = image(64, 0, (i) => i % 7 === 0);
  const refs = await writeImage(store, e);
  assert.ok(refs.length > 10);
  store.reads = 0;
  const head = await firstEntryHead(store, refs);
  assert.equal(store.reads, 1, 'only the chunk holding the header and the head line is read');
  const { chunks: _c, holes: _h, ...rest } = e;
  assert.deepEqual({ ...head, chunks: undefined, holes: undefined }, { ...rest, chunks: undefined, holes: undefined });
  assert.deepEqual(head?.chunks, []);
  const small = image(8, 0, () => false);
  assert.deepEqual(await firstEntryHead(store, await writeImage(store, small)), small);
});
