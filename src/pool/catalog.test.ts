/**
 * The catalog's latest point: the head (id and time, no manifest parsed) that the scheduler asks
 * of every source on every tick names the same point as the full row, damaged points passed over;
 * a source's point span (count, first and last time, bytes stored) is what the source list and the
 * usage samples show.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog, type PointRow } from './catalog.js';

test('the latest point head is the latest sound point, as latestPoint gives it; the point span counts them all and sums what they stored; heads list them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-catalog-'));
  const c = new Catalog(join(dir, 'catalog.db'));
  try {
    for (const name of ['disk', 'other']) c.addSource({ name, kind: 'image', path: `/${name}`, created: '2026-01-01T00:00:00.000Z' });
    assert.equal(c.latestPointHead('disk'), undefined);
    assert.equal(c.pointSpan('disk'), undefined);
    const point = (id: string, time: string, n: number, source = 'disk'): PointRow => ({
      id, source, time, kind: 'image', manifest: [['a'.repeat(64), 100]], logicalBytes: n, files: 1, readBytes: 0, newBytes: 0, storedNewBytes: 10 * n, durationMs: 1, parent: null, torn: 0,
    });
    c.insertPoint(point('p1', '2026-01-01T00:00:00.000Z', 1));
    c.insertPoint(point('p2', '2026-01-02T00:00:00.000Z', 2));
    c.insertPoint(point('p3', '2026-01-03T00:00:00.000Z', 3));
    c.insertPoint(point('q9', '2026-02-01T00:00:00.000Z', 9, 'other'));
    assert.deepEqual(c.latestPointHead('disk'), { id: 'p3', time: '2026-01-03T00:00:00.000Z', logicalBytes: 3 });
    assert.deepEqual(c.pointSpan('disk'), { count: 3, first: '2026-01-01T00:00:00.000Z', last: '2026-01-03T00:00:00.000Z', storedNewBytes: 60 });
    c.recordVerification({ point: 'p3', time: '2026-01-04T00:00:00.000Z', full: true, ok: false, detail: 'damaged' });
    assert.deepEqual(c.latestPointHead('disk'), { id: 'p2', time: '2026-01-02T00:00:00.000Z', logicalBytes: 2 });
    assert.equal(c.latestPoint('disk')?.id, 'p2');
    assert.equal(c.latestPoint('disk', undefined, { includeDamaged: true })?.id, 'p3');
    assert.equal(c.latestPoint('disk', '2026-01-01T12:00:00.000Z')?.id, 'p1');
    assert.deepEqual(c.pointHeads('disk').map((h) => h.id), ['p1', 'p2', 'p3'], 'damaged ones too, in time order');
    assert.deepEqual(c.pointHeads('disk', '2026-01-01T00:00:00.000Z'), [{ id: 'p2', time: '2026-01-02T00:00:00.000Z' }, { id: 'p3', time: '2026-01-03T00:00:00.000Z' }]);
    // What a prune reads: no manifest lists, pins and meta as the rows hold them.
    c.setPinned('p2', true);
    c.insertPoint({ ...point('p4', '2026-01-04T00:00:00.000Z', 4), meta: { startWal: '000000010000000000000003' } });
    assert.deepEqual(c.pointMarks('disk'), [
      { id: 'p1', time: '2026-01-01T00:00:00.000Z', pinned: false },
      { id: 'p2', time: '2026-01-02T00:00:00.000Z', pinned: true },
      { id: 'p3', time: '2026-01-03T00:00:00.000Z', pinned: false },
      { id: 'p4', time: '2026-01-04T00:00:00.000Z', pinned: false, meta: { startWal: '000000010000000000000003' } },
    ]);
  } finally {
    c.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
