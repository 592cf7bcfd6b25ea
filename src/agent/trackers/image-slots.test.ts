/**
 * Image slots: a parent entry on the fixed grid round-trips to the same chunks and holes, one
 * off the grid (another size, or cut elsewhere) is refused, and dirty byte ranges widen to the
 * whole slots they touch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import type { FileEntry } from '../../core/manifest.js';
import { ManifestWriter, PageCache, pagesOf } from '../../core/manifest-io.js';
import type { ChunkRef, PageLine } from '../../core/manifest.js';
import { ImageSlots } from './image-slots.js';

const K = 16 * 1024;
const d = (c: string): string => c.repeat(64);
const entry = (size: number, chunks: FileEntry['chunks'], holes?: FileEntry['holes']): FileEntry => ({ type: 'file', path: 'disk', mode: 0o644, uid: 0, gid: 0, mtimeNs: '0', size, chunks, ...(holes ? { holes } : {}) });

test('a grid entry round-trips; the last slot may be short', () => {
  const e = entry(3 * K + 512, [[d('a'), K], [d('b'), 512]], [[K, 2 * K]]);
  const slots = ImageSlots.fromEntry(e, 3 * K + 512, K);
  assert.ok(slots);
  assert.deepEqual(slots.slots, [[d('a'), K], null, null, [d('b'), 512]]);
  assert.deepEqual(slots.content(), { chunks: e.chunks, holes: e.holes });
});

test('an entry of another size or cut off the grid gives no slots', () => {
  assert.equal(ImageSlots.fromEntry(entry(2 * K, [[d('a'), K], [d('b'), K]]), 3 * K, K), undefined);
  assert.equal(ImageSlots.fromEntry(entry(2 * K, [[d('a'), 1000], [d('b'), 2 * K - 1000]]), 2 * K, K), undefined);
});

test('dirty ranges widen to the slots they touch, merged', () => {
  const s = ImageSlots.empty(10 * K, K);
  assert.deepEqual(s.runsOf([{ offset: 5 * K + 1, length: 10 }, { offset: 0, length: 64 * 1024 }, { offset: 4 * K - 1, length: 2 }, { offset: 9 * K, length: 0 }]), [{ first: 0, end: 6 }]);
  assert.deepEqual(s.runsOf([{ offset: 9 * K + 100, length: 10 * K }]), [{ first: 9, end: 10 }]);
});

test('pages(span) cuts the slots as pagesOf cuts their content, holes split at page bounds', () => {
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (const size of [64 * K, 64 * K + 512, 37 * K + 100, K]) {
    for (let round = 0; round < 20; round++) {
      const s = ImageSlots.empty(size, K);
      s.slots.forEach((_, i) => {
        const len = Math.min(K, size - i * K);
        s.slots[i] = rnd(3) === 0 ? null : [d('0123456789abcdef'[rnd(16)] as string), len];
      });
      const { chunks, holes } = s.content();
      const e = entry(size, chunks, holes.length > 0 ? holes : undefined);
      for (const span of [4 * K, 8 * K]) {
        const expected = pagesOf(e, span);
        assert.ok(expected);
        assert.deepEqual(s.pages(span), expected, `size ${size}, span ${span}, round ${round}`);
      }
    }
  }
});

test('the manifest writer refuses pages that do not tile the entry', async () => {
  const s = ImageSlots.empty(64 * K, K);
  s.slots.fill([d('a'), K]);
  const sink = { compressionLevel: 3, want: (x: string[]) => Promise.resolve(x.map(() => true)), put: () => Promise.resolve() };
  const head = { type: 'file' as const, path: 'disk', mode: 0o644, uid: 0, gid: 0, mtimeNs: '0', size: 64 * K };
  const pages = s.pages(8 * K);
  await new ManifestWriter(sink, 'image').addPaged(head, 8 * K, pages);
  await assert.rejects(new ManifestWriter(sink, 'image').addPaged(head, 8 * K, pages.slice(1)), /do not cover/);
  await assert.rejects(new ManifestWriter(sink, 'image').addPaged({ ...head, size: 64 * K + 1 }, 8 * K, pages), /do not cover/);
});

test('a page source tells an unchanged page from a changed one without making it, and the manifest is the same with or without the cache', async () => {
  let seed = 11;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const size = 64 * K + 512;
  const span = 8 * K;
  const slot = (i: number): ChunkRef | null => (rnd(3) === 0 ? null : [d('0123456789abcdef'[rnd(16)] as string), Math.min(K, size - i * K)]);
  const s = ImageSlots.empty(size, K);
  s.slots.forEach((_, i) => (s.slots[i] = slot(i)));
  const stored = new Map<string, number>();
  const sink = {
    compressionLevel: 1,
    want: (x: string[]) => Promise.resolve(x.map((dg) => !stored.has(dg))),
    put: (c: Array<{ digest: string; length: number }>) => Promise.resolve(void c.forEach((x) => stored.set(x.digest, x.length))),
  };
  const head = { type: 'file' as const, path: 'disk', mode: 0o644, uid: 0, gid: 0, mtimeNs: '0', size };
  const cache = new PageCache();
  const write = async (pages: PageCache | undefined, slots: ImageSlots): Promise<ChunkRef[]> => {
    const w = new ManifestWriter(sink, 'image', { pageSpan: span, pages });
    await w.addPaged(head, span, pages ? slots.pageSource(span) : slots.pages(span));
    return w.finish();
  };
  await write(cache, s);
  for (let round = 0; round < 40; round++) {
    const kept = s.pages(span);
    // Change a few slots: a new chunk, a hole, a hole filled, or the same value in a new array.
    for (let n = rnd(3); n >= 0; n--) {
      const i = rnd(s.slots.length);
      const was = s.slots[i];
      s.slots[i] = rnd(4) === 0 && was ? [was[0], was[1]] : slot(i);
    }
    const src = s.pageSource(span);
    for (let i = 0; i < src.count; i++) assert.equal(src.same(i, kept[i] as PageLine), isDeepStrictEqual(src.page(i), kept[i]), `round ${round}, page ${i}`);
    assert.deepEqual(await write(cache, s), await write(undefined, s), `round ${round}: the cache changed the manifest`);
  }
});
