import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PointRow } from '../pool/catalog.js';
import { ControlDb } from './control-db.js';
import { UsageSamples, type UsagePool } from './usage-samples.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-25T08:00:00Z');

/** A pool that answers from a table of points per source, and a stored size that can be held back. */
class FakePool implements UsagePool {
  bytes = 1000;
  packs = 3;
  points = new Map<string, Array<Pick<PointRow, 'logicalBytes' | 'storedNewBytes'>>>();
  gate: Promise<void> | undefined;
  measured = 0;

  async storedBytes(): Promise<{ bytes: number; packs: number }> {
    this.measured++;
    await this.gate;
    return { bytes: this.bytes, packs: this.packs };
  }

  catalog = {
    pointSpan: (source: string): { count: number; first: string; last: string; storedNewBytes: number } | undefined => {
      const ps = this.points.get(source) ?? [];
      return ps.length > 0 ? { count: ps.length, first: '', last: '', storedNewBytes: ps.reduce((n, p) => n + p.storedNewBytes, 0) } : undefined;
    },
    latestPointHead: (source: string): { id: string; time: string; logicalBytes: number } | undefined => {
      const p = this.points.get(source)?.at(-1);
      return p ? { id: '', time: '', logicalBytes: p.logicalBytes } : undefined;
    },
  };
}

function setup(): { db: ControlDb; pool: FakePool; usage: UsageSamples; clock: { now: number } } {
  const db = new ControlDb(':memory:');
  const created = new Date(T0).toISOString();
  db.addAgent({ id: 'a1', name: 'host-a', hostname: 'host-a', created, version: null });
  for (const name of ['daily', 'weekly', 'empty']) db.addGroup({ name, syncEveryMs: null, points: [], retainMs: DAY, compress: true, throttleBps: null, created });
  for (const [name, group] of [['web', 'daily'], ['db', 'daily'], ['mail', 'weekly']] as const) {
    db.addSource({ name, group, agentId: 'a1', kind: 'dir', options: {}, path: `/srv/${name}`, created, lastSync: null, lastPointSlot: null });
  }
  const pool = new FakePool();
  pool.points.set('web', [{ logicalBytes: 500, storedNewBytes: 300 }, { logicalBytes: 700, storedNewBytes: 50 }]);
  pool.points.set('db', [{ logicalBytes: 2000, storedNewBytes: 900 }]);
  const clock = { now: T0 };
  const usage = new UsageSamples(db, pool, { warn: () => undefined }, () => clock.now);
  return { db, pool, usage, clock };
}

test('a sample holds the pool size and, per group, its sources, points, latest logical bytes and stored bytes', async () => {
  const { db, usage } = setup();
  const s = await usage.measure();
  assert.equal(s.time, new Date(T0).toISOString());
  assert.deepEqual([s.storedBytes, s.packs], [1000, 3]);
  assert.deepEqual(s.groups, [
    { group: 'daily', sources: 2, points: 3, latestLogicalBytes: 700 + 2000, storedNewBytes: 300 + 50 + 900 },
    { group: 'empty', sources: 0, points: 0, latestLogicalBytes: 0, storedNewBytes: 0 },
    { group: 'weekly', sources: 1, points: 0, latestLogicalBytes: 0, storedNewBytes: 0 },
  ]);
  assert.deepEqual(usage.samples(), [], 'measure records nothing');
  db.close();
});

test('recorded samples come back in time order, from a given time on', async () => {
  const { db, pool, usage } = setup();
  for (let i = 0; i < 3; i++) {
    pool.bytes = 1000 * (i + 1);
    await usage.record(new Date(T0 + i * 600_000));
  }
  assert.deepEqual(usage.samples().map((s) => s.storedBytes), [1000, 2000, 3000]);
  const since = usage.samples(new Date(T0 + 600_000).toISOString());
  assert.deepEqual(since.map((s) => [s.time, s.storedBytes]), [[new Date(T0 + 600_000).toISOString(), 2000], [new Date(T0 + 1_200_000).toISOString(), 3000]]);
  assert.deepEqual(since[0]?.groups.find((g) => g.group === 'daily')?.storedNewBytes, 1250, 'per-group figures are kept with the sample');
  assert.deepEqual(usage.samples(new Date(T0 + DAY).toISOString()), []);
  db.close();
});

test('samples older than a year are dropped when the next one is recorded', async () => {
  const { db, usage } = setup();
  await usage.record(new Date(T0 - 400 * DAY));
  await usage.record(new Date(T0 - 300 * DAY));
  assert.equal(usage.samples().length, 2, 'nothing is dropped by a sample older still');
  await usage.record(new Date(T0));
  assert.deepEqual(usage.samples().map((s) => s.time), [new Date(T0 - 300 * DAY).toISOString(), new Date(T0).toISOString()]);
  db.close();
});

test('after a sync, a sample is taken at most once a minute, and never two at once', async () => {
  const { db, pool, usage, clock } = setup();
  const settled = async (n: number): Promise<void> => {
    for (let i = 0; i < 200 && usage.samples().length < n; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(usage.samples().length, n);
  };
  usage.take();
  await settled(1);
  clock.now += 59_000;
  usage.take();
  assert.equal(pool.measured, 1, 'within a minute of the last: skipped');
  clock.now += 2000;
  usage.take();
  await settled(2);
  // one still measuring: another, even a forced one, is not started beside it
  let open = (): void => undefined;
  pool.gate = new Promise((r) => (open = r));
  clock.now += 120_000;
  usage.take();
  usage.take(true);
  assert.equal(pool.measured, 3);
  open();
  await settled(3);
  clock.now += 1000;
  usage.take(true);
  await settled(4);
  assert.deepEqual(usage.samples().map((s) => Date.parse(s.time) - T0), [0, 61_000, 181_000, 182_000]);
  db.close();
});
