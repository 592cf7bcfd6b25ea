import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyRetention, bucketOf } from './retention.js';

const DAY = 86_400_000;
/** One point every `stepHours` hours back from 2026-11-25T12:00Z, newest first. */
function series(n: number, stepHours: number): Array<{ id: string; time: string; pinned?: boolean }> {
  const t0 = Date.parse('2026-11-25T12:00:00Z');
  return Array.from({ length: n }, (_, i) => ({ id: `p${i}`, time: new Date(t0 - i * stepHours * 3_600_000).toISOString() }));
}
const ids = (xs: Array<{ id: string }>): string[] => xs.map((x) => x.id);

test('ISO weeks: the week with the first Thursday is week 1', () => {
  assert.equal(bucketOf('weekly', new Date('2026-01-01T00:00:00Z')), '2026-W01'); // a Thursday
  assert.equal(bucketOf('weekly', new Date('2027-01-01T00:00:00Z')), '2026-W53'); // a Friday
  assert.equal(bucketOf('weekly', new Date('2024-12-30T00:00:00Z')), '2025-W01'); // a Monday
  assert.equal(bucketOf('daily', new Date('2026-11-25T23:59:59Z')), '2026-11-25');
  assert.equal(bucketOf('monthly', new Date('2026-11-25T23:59:59Z')), '2026-11');
});

test('keep-within keeps every point within the span before the newest point', () => {
  const pts = series(40, 12); // 20 days of two points a day
  const r = applyRetention(pts, { within: 14 * DAY });
  assert.equal(r.keep.length, 29); // 0..28 (14 days = 28 steps of 12 h, inclusive)
  assert.deepEqual(ids(r.remove), ids(pts.slice(29)));
});

test('keep-within counts from the newest point, not from now', () => {
  const old = [{ id: 'a', time: '2020-01-02T00:00:00Z' }, { id: 'b', time: '2020-01-01T00:00:00Z' }, { id: 'c', time: '2019-01-01T00:00:00Z' }];
  assert.deepEqual(ids(applyRetention(old, { within: 2 * DAY }).keep.map((k) => k.point)), ['a', 'b']);
});

test('keep-last and keep-daily: newest per day for the last N days that have points', () => {
  const pts = series(12, 6); // 4 a day over 3 days
  const r = applyRetention(pts, { last: 2, daily: 2 });
  // p0,p1 by last; p0 newest of 2026-11-25, and the newest of 11-24 is p3 (06:00 + ... )
  const kept = r.keep.map((k) => `${k.point.id}:${k.reasons.join('+')}`);
  assert.deepEqual(kept, ['p0:last+daily 2026-11-25', 'p1:last', 'p3:daily 2026-11-24']);
});

test('gaps: bucket rules count buckets that have points', () => {
  const pts = [
    { id: 'x', time: '2026-11-25T10:00:00Z' },
    { id: 'y', time: '2026-11-01T10:00:00Z' },
    { id: 'z', time: '2026-06-01T10:00:00Z' },
    { id: 'w', time: '2025-06-01T10:00:00Z' },
  ];
  assert.deepEqual(ids(applyRetention(pts, { monthly: 2 }).keep.map((k) => k.point)), ['x', 'z']);
  assert.deepEqual(ids(applyRetention(pts, { yearly: 5 }).keep.map((k) => k.point)), ['x', 'w']);
  assert.deepEqual(ids(applyRetention(pts, { weekly: 3 }).keep.map((k) => k.point)), ['x', 'y', 'z']);
});

test('pinned points are never removed', () => {
  const pts = series(5, 24);
  (pts[4] as { pinned?: boolean }).pinned = true;
  const r = applyRetention(pts, { last: 1 });
  assert.deepEqual(ids(r.keep.map((k) => k.point)), ['p0', 'p4']);
  assert.deepEqual(r.keep[1]?.reasons, ['pinned']);
  assert.deepEqual(ids(r.remove), ['p1', 'p2', 'p3']);
});

test('an empty or invalid policy is refused', () => {
  assert.throws(() => applyRetention(series(3, 1), {}), /at least one rule/);
  assert.throws(() => applyRetention(series(3, 1), { last: 0 }), /at least 1/);
  assert.throws(() => applyRetention(series(3, 1), { daily: 1.5 }), /whole number/);
});

test('input order does not matter and nothing is lost', () => {
  const pts = series(30, 7);
  const shuffled = [...pts].reverse();
  const a = applyRetention(pts, { daily: 3, weekly: 2 });
  const b = applyRetention(shuffled, { daily: 3, weekly: 2 });
  assert.deepEqual(ids(a.keep.map((k) => k.point)), ids(b.keep.map((k) => k.point)));
  assert.equal(a.keep.length + a.remove.length, pts.length);
});
