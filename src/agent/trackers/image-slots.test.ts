/**
 * Image slots: a parent entry on the fixed grid round-trips to the same chunks and holes, one
 * off the grid (another size, or cut elsewhere) is refused, and dirty byte ranges widen to the
 * whole slots they touch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FileEntry } from '../../core/manifest.js';
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
