import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultAllocation } from './allocation.js';

const GB = 1024 ** 3;
const MB = 1024 ** 2;

test('DPM 2007 default allocation: replica 1.5x, recovery points size x days x 2% + 1600 MB', () => {
  const a = defaultAllocation(100 * GB, 5);
  assert.equal(a.replicaBytes, 150 * GB);
  assert.equal(a.recoveryPointBytes, 10 * GB + 1600 * MB);
  assert.equal(a.totalBytes, 160 * GB + 1600 * MB);
});

test('an empty source still gets the 1600 MB recovery point floor', () => {
  assert.deepEqual(defaultAllocation(0, 14), { replicaBytes: 0, recoveryPointBytes: 1600 * MB, totalBytes: 1600 * MB });
});

test('bytes are rounded up and negative input refused', () => {
  assert.equal(defaultAllocation(3, 1).replicaBytes, 5);
  assert.throws(() => defaultAllocation(-1, 5), RangeError);
});
