/** Drill schedules: times of day or an interval, and clear refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDrillSchedule } from './drills.js';

test('a drill schedule is times of day or an interval', () => {
  assert.deepEqual(parseDrillSchedule('03:30'), { times: ['03:30'] });
  assert.deepEqual(parseDrillSchedule('15:30, 03:30,03:30'), { times: ['03:30', '15:30'] });
  assert.deepEqual(parseDrillSchedule('7d'), { everyMs: 7 * 86_400_000 });
  assert.deepEqual(parseDrillSchedule('12h'), { everyMs: 12 * 3_600_000 });
});

test('a bad or too frequent drill schedule is refused', () => {
  assert.throws(() => parseDrillSchedule('25:00'), /neither times of day/);
  assert.throws(() => parseDrillSchedule('daily'), /neither times of day/);
  assert.throws(() => parseDrillSchedule('10s'), /too frequent/);
});
