import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bigBuffer, keepBigBuffer, movable, spareBigBuffer } from './big-buffers.js';

const MiB = 1024 * 1024;

/** Empties the store (it is per thread, shared by the tests of this file). */
function drain(): number {
  let n = 0;
  while (spareBigBuffer(1)) n++;
  return n;
}

test('a big buffer given back serves the next request that fits; its whole memory moves with a shorter view', () => {
  drain();
  const a = bigBuffer(3 * MiB + 5);
  assert.equal(a.length, 3 * MiB + 5);
  assert.equal(a.buffer.byteLength, 4 * MiB, 'new buffers are rounded up to whole MiB');
  assert.ok(movable(a), 'a view of a buffer handed out here moves whole');
  assert.ok(!movable(Buffer.from('slab')), 'a view into a shared slab does not');
  assert.ok(!movable(a.subarray(1)), 'nor a view that does not start at its beginning');
  const memory = a.buffer;
  keepBigBuffer(memory);
  const b = bigBuffer(2 * MiB);
  assert.equal(b.buffer, memory, 'the kept memory is reused');
  assert.equal(b.length, 2 * MiB);
  assert.notEqual(bigBuffer(2 * MiB).buffer, memory, 'and handed out once');
  assert.equal(bigBuffer(100).length, 100, 'a small buffer is an ordinary one');
});

test('the smallest kept buffer that fits is taken, and what is kept idle is bounded', () => {
  drain();
  const small = new ArrayBuffer(2 * MiB);
  const large = new ArrayBuffer(8 * MiB);
  keepBigBuffer(large);
  keepBigBuffer(small);
  keepBigBuffer(new ArrayBuffer(MiB - 1)); // too small to keep
  assert.equal(spareBigBuffer(MiB)?.buffer, small);
  assert.equal(spareBigBuffer(3 * MiB)?.buffer, large);
  assert.equal(spareBigBuffer(1), undefined);
  for (let i = 0; i < 100; i++) keepBigBuffer(new ArrayBuffer(MiB));
  assert.equal(drain(), 64, 'at most 64 MiB stays idle');
});
