import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedRanges, parseFilefrag } from './btrfs-extent-diff.js';

const KiB = 1024;

const sample = `Filesystem type is: 9123683e
File size of f is 2147483648 (524288 blocks of 4096 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:        0..    2191:      72960..     75151:   2192:             shared
   1:     2192..    2207:     711936..    711951:     16:      75152: shared
   2:     2208..    3071:      75168..     76031:    864:     711952:
   3:     3328..    5375:       3328..      5375:   2048:      76288: last,eof
f: 4 extents found
`;

test('filefrag output parses to byte extents; compressed or inline extents refuse', () => {
  const e = parseFilefrag(sample);
  assert.deepEqual(e?.[1], { logical: 2192 * 4096, physical: 711936 * 4096, length: 16 * 4096 });
  assert.equal(e?.length, 4);
  assert.equal(parseFilefrag(sample.replace('last,eof', 'encoded,last,eof')), undefined);
  assert.equal(parseFilefrag(sample.replace(':             shared', ':             inline')), undefined);
});

test('only the bytes mapped differently in the two snapshots count as changed', () => {
  // Parent: one 1 MiB extent. Now: a 64 KiB write at 256 KiB split it into three.
  const prev = [{ logical: 0, physical: 10_000 * KiB, length: 1024 * KiB }];
  const cur = [
    { logical: 0, physical: 10_000 * KiB, length: 256 * KiB },
    { logical: 256 * KiB, physical: 90_000 * KiB, length: 64 * KiB },
    { logical: 320 * KiB, physical: 10_320 * KiB, length: 704 * KiB },
  ];
  // btrfs send reported the whole extent written.
  assert.deepEqual(changedRanges([{ offset: 0, length: 1024 * KiB }], prev, cur), [{ offset: 256 * KiB, length: 64 * KiB }]);
  // A punched hole (data before, none now) and data written into a hole both count; a hole in both does not.
  const holed = [
    { logical: 0, physical: 10_000 * KiB, length: 512 * KiB },
    { logical: 576 * KiB, physical: 10_576 * KiB, length: 448 * KiB },
  ];
  assert.deepEqual(changedRanges([{ offset: 0, length: 2048 * KiB }], prev, holed), [{ offset: 512 * KiB, length: 64 * KiB }]);
  assert.deepEqual(changedRanges([{ offset: 0, length: 2048 * KiB }], holed, prev), [{ offset: 512 * KiB, length: 64 * KiB }]);
  // Outside the reported ranges nothing is looked at.
  assert.deepEqual(changedRanges([{ offset: 0, length: 128 * KiB }], prev, cur), []);
});
