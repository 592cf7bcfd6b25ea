import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restoreSelection } from './entry-path.js';

test('a restore selection is normalized, in walk order, without entries inside other chosen entries', () => {
  assert.deepEqual(restoreSelection(['b/c', '/a/', 'a/x', 'a-z', 'b/c/d', 'a']), ['a', 'a-z', 'b/c']);
  assert.deepEqual(restoreSelection(['etc', '.', 'home/alice']), ['.'], 'the root holds everything');
  assert.deepEqual(restoreSelection(['x', 'x']), ['x']);
});

test('a restore selection refuses two entries of one name, no entries, and paths that leave the point', () => {
  assert.throws(() => restoreSelection(['a/report.txt', 'b/report.txt']), /'a\/report.txt' and 'b\/report.txt' have the same name/);
  assert.throws(() => restoreSelection([]), /no path/);
  assert.throws(() => restoreSelection(['a', '../etc']), /unsafe path/);
});
