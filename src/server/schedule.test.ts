import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lastSlot, rpoState, scheduleFor, syncIntervalMs } from './schedule.js';
import type { GroupRow } from './control-db.js';

const group = (o: Partial<GroupRow>): GroupRow => ({ name: 'g', syncEveryMs: null, points: [], retainMs: 0, compress: true, throttleBps: null, created: '', ...o });
const at = (h: number, m = 0, dayOffset = 0): Date => {
  const d = new Date(2026, 10, 25 + dayOffset, h, m, 0, 0);
  return d;
};

test('lastSlot is the latest point time at or before now, today or yesterday', () => {
  const pts = ['08:00', '12:00', '20:00'];
  assert.deepEqual(lastSlot(pts, at(13, 5)), at(12));
  assert.deepEqual(lastSlot(pts, at(12, 0)), at(12));
  assert.deepEqual(lastSlot(pts, at(7, 59)), at(20, 0, -1));
  assert.equal(lastSlot([], at(7)), undefined);
});

test('the objective: a point within one sync interval plus grace', () => {
  const g = group({ syncEveryMs: 15 * 60_000 });
  const created = at(0);
  const now = at(12);
  assert.equal(rpoState(g, created, at(11, 50), now).compliant, true);
  const late = rpoState(g, created, at(11, 0), now);
  assert.equal(late.compliant, false);
  assert.match(late.reason ?? '', /older than/);
  assert.equal(rpoState(g, created, undefined, now).reason, 'no recovery point yet');
  // A source younger than its first deadline is not judged yet.
  assert.equal(rpoState(g, at(11, 50), undefined, now).compliant, true);
});

test('the objective: a point at or after the latest scheduled time, once its grace has passed', () => {
  const g = group({ points: ['08:00', '20:00'] });
  const created = at(0, 0, -2);
  assert.equal(rpoState(g, created, at(7, 0), at(8, 10)).compliant, true, 'within grace after 08:00');
  assert.equal(rpoState(g, created, at(7, 0), at(9, 0)).compliant, false, 'no point since 08:00');
  assert.equal(rpoState(g, created, at(8, 2), at(9, 0)).compliant, true);
});

test('a database source takes express fulls at the point times, or daily; a file source syncs at the frequency', () => {
  const every15 = group({ syncEveryMs: 15 * 60_000 });
  const withPoints = group({ syncEveryMs: 15 * 60_000, points: ['20:00'] });
  assert.equal(syncIntervalMs('dir', every15), 15 * 60_000);
  assert.equal(syncIntervalMs('image', withPoints), 15 * 60_000);
  assert.equal(syncIntervalMs('postgres', every15), 86_400_000, 'no point times: one express full a day');
  assert.equal(syncIntervalMs('sqlite', every15), 86_400_000);
  assert.equal(syncIntervalMs('postgres', withPoints), null, 'the point times alone');
  assert.equal(syncIntervalMs('postgres', group({ syncEveryMs: null })), null, 'an unscheduled group stays unscheduled');
  // The objective follows: a day-old express full with the logs shipped since is no missed objective.
  const now = at(12);
  const dayOld = new Date(now.getTime() - 20 * 3_600_000);
  assert.equal(rpoState(scheduleFor('postgres', every15), at(0, 0, -3), dayOld, now).compliant, true);
  assert.equal(rpoState(scheduleFor('dir', every15), at(0, 0, -3), dayOld, now).compliant, false);
});
