import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Pool } from '../pool/pool.js';
import { Alerts } from './alerts.js';
import { ControlDb, type JobRow } from './control-db.js';
import { GroupPolicies, retentionOf } from './group-policy.js';
import { Maintenance, type MaintenanceOptions } from './maintenance.js';
import { damageChunk, dbPoint, ship } from '../pool/log-fixtures.test.js';
import type { ChunkRef } from '../core/manifest.js';

const log = { info: (): void => undefined, warn: (): void => undefined };

async function setup(schedules: MaintenanceOptions = { pruneEveryMs: null, gcEveryMs: null, verifyEveryMs: null }): Promise<{ m: Maintenance; db: ControlDb; pool: Pool; done: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-maint-'));
  await Pool.init(join(dir, 'pool'));
  const pool = await Pool.open(join(dir, 'pool'));
  const db = new ControlDb(join(dir, 'control.sqlite'));
  const m = new Maintenance({ pool, db, alerts: new Alerts(db, log), log }, schedules);
  return {
    m,
    db,
    pool,
    done: async () => {
      await m.close();
      await pool.close();
      db.close();
      rmSync(dir, { recursive: true });
    },
  };
}

const job = { id: 'j1', type: 'sync', source: 'web' } as JobRow;

/** A group 'g' (the given retention) with a PostgreSQL source 'db' on agent 'a1'. */
function dbSource(db: ControlDb, retainMs = 14 * 86_400_000): void {
  const created = new Date().toISOString();
  db.addAgent({ id: 'a1', name: 'a1', hostname: 'h', created, version: null });
  db.addGroup({ name: 'g', syncEveryMs: null, points: [], retainMs, compress: true, throttleBps: null, created });
  db.addSource({ name: 'db', group: 'g', agentId: 'a1', kind: 'postgres', options: {}, path: '/pg', created, lastSync: null, lastPointSlot: null });
}

/** Stored bytes of the chunks of these log records. */
function storedOf(pool: Pool, logs: Array<{ manifest: ChunkRef[] }>): number {
  return logs.reduce((n, l) => n + l.manifest.reduce((k, [d]) => k + (pool.index.get(d)?.storedLength ?? 0), 0), 0);
}

test('a sync failing with POOL_FULL raises a critical alert; the next good sync resolves it', async () => {
  const { m, db, done } = await setup();
  m.jobEnded(job, { state: 'failed', error: { code: 'POOL_FULL', message: 'storage pool /p is out of space' } });
  assert.equal(db.activeAlert('pool-full')?.severity, 'critical');
  m.jobEnded(job, { state: 'failed', error: { code: 'SOURCE_UNREADABLE', message: 'x' } });
  assert.ok(db.activeAlert('pool-full'), 'another failure leaves it');
  m.jobEnded(job, { state: 'succeeded', result: {} });
  assert.equal(db.activeAlert('pool-full'), undefined);
  await done();
});

test('one gc or verify at a time; a finished task stays readable', async () => {
  const { m, done } = await setup();
  const v = m.startVerify({ full: true, origin: 'test' });
  assert.throws(() => m.startGc({ origin: 'test' }), /one gc or verify runs at a time/);
  const end = Date.now() + 20_000;
  while (m.task(v.id).state === 'running' && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.equal(m.task(v.id).state, 'succeeded');
  const g = m.startGc({ dryRun: true, origin: 'test' });
  while (m.task(g.id).state === 'running' && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.equal(m.task(g.id).state, 'succeeded', JSON.stringify(m.task(g.id).error));
  await done();
});

test('group policy: keep rules add to the retention range; 0 clears a rule; bad values change nothing', async () => {
  const { m, db, done } = await setup();
  db.addGroup({ name: 'g', syncEveryMs: null, points: [], retainMs: 86_400_000, compress: true, throttleBps: null, created: new Date().toISOString() });
  const p = m.policies;
  assert.deepEqual(p.get('g'), { keep: {}, quotaFactor: 1, quotaBytes: null });
  p.update('g', { keepLast: 3, keepDaily: 7, quota: '64KiB' });
  assert.deepEqual(p.get('g'), { keep: { last: 3, daily: 7 }, quotaFactor: 1, quotaBytes: 65536 });
  p.update('g', { keepLast: 0, quota: 'default', quotaFactor: 1.5 });
  assert.deepEqual(p.get('g'), { keep: { daily: 7 }, quotaFactor: 1.5, quotaBytes: null });
  assert.throws(() => GroupPolicies.check({ quotaFactor: 0 }), /quota-factor/);
  assert.throws(() => GroupPolicies.check({ keepWeekly: -1 }), /keep-weekly/);
  assert.throws(() => p.update('g', { keepLast: 2, quota: 'lots' }), /not a size/);
  assert.deepEqual(p.get('g').keep, { daily: 7 }, 'a refused update changes nothing');
  assert.deepEqual(retentionOf(db.group('g') as NonNullable<ReturnType<ControlDb['group']>>, p.get('g')), { within: 86_400_000, daily: 7 });
  await done();
});

test('schedules: verify and gc start when due, one at a time; a first start counts as a run', async () => {
  const { m, done } = await setup({ pruneEveryMs: null, gcEveryMs: 60_000, verifyEveryMs: 60_000 });
  m.tick(new Date());
  assert.equal((m.status() as { running: unknown }).running, null, 'nothing is due right after the first start');
  const later = new Date(Date.now() + 61_000);
  m.tick(later);
  const first = (m.status() as { running: { type: string; origin: string; params: { olderThanMs?: number } } | null }).running;
  assert.equal(first?.type, 'verify');
  assert.equal(first?.origin, 'schedule');
  assert.equal(first?.params.olderThanMs, 60_000, 'a scheduled verify re-hashes only what was not verified within its interval');
  const end = Date.now() + 20_000;
  while ((m.status() as { running: unknown }).running && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  m.tick(later);
  assert.equal((m.status() as { running: { type: string } | null }).running?.type, 'gc', 'gc, due too, waited for the verify');
  await done();
});

test("usage: a database source's shipped log records count as its stored bytes (unique, against its quota), not as unreferenced", async () => {
  const { m, db, pool, done } = await setup();
  try {
    dbSource(db);
    const logs = [await ship(pool, 'db', '000000010000000000000001', randomBytes(300_000)), await ship(pool, 'db', '000000010000000000000002', randomBytes(200_000))];
    const u = await m.storage();
    const s = u.sources.find((x) => x.source === 'db');
    assert.equal(s?.uniqueBytes, storedOf(pool, logs));
    assert.equal(s?.storedBytes, storedOf(pool, logs), 'held against its quota');
    assert.equal(u.groups.find((g) => g.group === 'g')?.uniqueBytes, storedOf(pool, logs));
    assert.equal(u.pool.referencedBytes, storedOf(pool, logs));
    assert.equal(u.pool.unreferencedBytes, 0, 'gc frees none of it');
  } finally {
    await done();
  }
});

test("group prune: a database's log records go with the express full that needed them; the result and the dry run say which", async () => {
  const { m, db, pool, done } = await setup();
  try {
    dbSource(db, 1000); // the retention range keeps only the newest point
    const seg = (n: number): string => `00000001000000000000000${n}`;
    for (let n = 1; n <= 4; n++) await ship(pool, 'db', seg(n), randomBytes(50_000));
    const ago = (min: number): string => new Date(Date.now() - min * 60_000).toISOString();
    await dbPoint(pool, 'db', ago(30), { startWal: seg(1), stopWal: seg(1) });
    const full2 = await dbPoint(pool, 'db', ago(20), { startWal: seg(3), stopWal: seg(3) });
    const dry = await m.prune({ dryRun: true, origin: 'test' });
    assert.deepEqual([dry.removed, dry.logsRemoved, dry.logBytesRemoved], [1, 2, 100_000]);
    assert.deepEqual(dry.groups[0]?.sources[0]?.logs, { records: 2, bytes: 100_000, first: seg(1), last: seg(2) });
    assert.equal(pool.catalog.logs('db').length, 4, 'a dry run removes nothing');
    const r = await m.prune({ origin: 'test' });
    assert.deepEqual([r.removed, r.logsRemoved, r.logBytesRemoved], [1, 2, 100_000]);
    assert.deepEqual(pool.catalog.points('db').map((p) => p.id), [full2.id]);
    assert.deepEqual(pool.catalog.logs('db').map((l) => l.name), [seg(3), seg(4)], 'the kept full needs its start segment and everything after');
  } finally {
    await done();
  }
});

test('verify: a damaged log record raises a critical alert naming it, and the express full that needs it', async () => {
  const { m, db, pool, done } = await setup();
  try {
    dbSource(db);
    const seg1 = await ship(pool, 'db', '000000010000000000000001', randomBytes(100_000));
    await ship(pool, 'db', '000000010000000000000002', randomBytes(100_000));
    const full = await dbPoint(pool, 'db', new Date().toISOString(), { startWal: '000000010000000000000001', stopWal: '000000010000000000000001' });
    await damageChunk(pool, seg1.manifest[0]?.[0] as string);
    const v = m.startVerify({ full: true, origin: 'test' });
    const end = Date.now() + 20_000;
    while (m.task(v.id).state === 'running' && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.equal(m.task(v.id).state, 'succeeded');
    const alert = db.activeAlert('verify-damage');
    assert.equal(alert?.severity, 'critical');
    assert.match(alert?.message ?? '', /1 damaged log record\(s\), past which a database cannot be recovered: db 000000010000000000000001 \(seq 1\)/);
    assert.match(alert?.message ?? '', new RegExp(`1 damaged recovery point\\(s\\): db ${full.id} .*damaged log record\\(s\\) it needs: 000000010000000000000001`));
  } finally {
    await done();
  }
});
