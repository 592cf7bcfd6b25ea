import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, parseDuration, parseSize } from './units.js';

test('sizes and durations parse as users write them', () => {
  assert.equal(parseSize('16KiB'), 16384);
  assert.equal(parseSize('20MiB'), 20 * 1024 * 1024);
  assert.equal(parseSize('1.5 GB'), 1.5e9);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('14d'), 14 * 86_400_000);
  assert.throws(() => parseSize('lots'), /not a size/);
  assert.throws(() => parseDuration('soon'), /not a duration/);
  assert.equal(formatBytes(1536), '1.5 KiB');
});
