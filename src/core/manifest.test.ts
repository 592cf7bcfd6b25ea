import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkOffsets, decodeEntryLine, type Entry, type FileEntry } from './manifest.js';

const decodeEntry = (line: string): Entry => decodeEntryLine(line, 1);
import { isHoldfastError } from './errors.js';
import { normalizeSubPath } from './entry-path.js';

const d = 'a'.repeat(64);
const base = { mode: 0o644, uid: 0, gid: 0, mtimeNs: '1' };

test('a well-formed entry decodes', () => {
  const e = decodeEntry(JSON.stringify({ type: 'file', path: 'a/b', ...base, size: 10, chunks: [[d, 4]], holes: [[4, 6]] }));
  assert.equal(e.type, 'file');
});

for (const path of ['../x', '/etc/passwd', 'a/../../x', './x', 'a//b', '', 'a/', 'x\u0000y']) {
  test(`unsafe path ${JSON.stringify(path)} is refused`, () => {
    assert.throws(
      () => decodeEntry(JSON.stringify({ type: 'dir', path, ...base })),
      (err: unknown) => isHoldfastError(err) && err.code === 'UNSAFE_PATH',
    );
  });
}

test('hard link targets are checked like paths', () => {
  assert.throws(() => decodeEntry(JSON.stringify({ type: 'hardlink', path: 'x', target: '../y', ...base, size: 0, chunks: [] })), /unsafe path/);
});

test('chunks and holes must cover the size exactly', () => {
  assert.throws(() => decodeEntry(JSON.stringify({ type: 'file', path: 'f', ...base, size: 11, chunks: [[d, 4]], holes: [[4, 6]] })), /cover 10 bytes/);
  assert.throws(() => decodeEntry(JSON.stringify({ type: 'file', path: 'f', ...base, size: 10, chunks: [[d, 4]], holes: [[8, 6]] })), /past the end/);
});

test('chunk offsets skip holes', () => {
  const e: FileEntry = { type: 'file', path: 'f', ...base, size: 30, chunks: [[d, 5], [d, 5], [d, 5]], holes: [[0, 5], [10, 10]] };
  assert.deepEqual([...chunkOffsets(e)].map((c) => c.offset), [5, 20, 25]);
});

test('user sub paths normalize', () => {
  assert.equal(normalizeSubPath('/a/./b/'), 'a/b');
  assert.equal(normalizeSubPath('/'), '.');
  assert.throws(() => normalizeSubPath('a/../b'), /unsafe/);
});

test('walk order: parents first, siblings by name, no repeats', async () => {
  const { compareWalkOrder } = await import('./entry-path.js');
  const sorted = ['.', 'a', 'a/b', 'a/b/c', 'a/c', 'a-b', 'b'];
  for (let i = 1; i < sorted.length; i++) assert.ok(compareWalkOrder(sorted[i - 1] as string, sorted[i] as string) < 0, `${sorted[i - 1]} < ${sorted[i]}`);
  assert.equal(compareWalkOrder('a/b', 'a/b'), 0);
});

test('malformed chunk references and holes are refused', () => {
  for (const chunks of [[['xyz', 4]], [[d, -1]], [[d]], ['nope'], [[d, 1.5]]]) {
    assert.throws(() => decodeEntry(JSON.stringify({ type: 'file', path: 'f', ...base, size: 4, chunks })), /malformed chunk reference/);
  }
  assert.throws(() => decodeEntry(JSON.stringify({ type: 'file', path: 'f', ...base, size: 4, chunks: [[d, 4]], holes: [[0, 0]] })), /malformed hole/);
});
