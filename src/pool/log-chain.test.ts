import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { digestOf } from '../core/digest.js';
import { Pool } from './pool.js';
import { runGc } from './gc.js';
import { verifyPool } from './verify.js';
import { logsForRestore, pruneLogs } from './log-chain.js';
import { prunePoints } from './point-admin.js';
import type { PointRow } from './catalog.js';
import { damageChunk, dbPoint, ship } from './log-fixtures.test.js';
import { poolUsage, type SourceUsage } from './usage.js';
import { pointDigests } from './point-digests.js';

async function withPool(fn: (pool: Pool, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hf-logchain-'));
  try {
    await Pool.init(join(dir, 'pool'));
    const pool = await Pool.open(join(dir, 'pool'));
    try {
      await fn(pool, join(dir, 'pool'));
    } finally {
      await pool.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Ages every index file so gc may judge its pack (gc leaves packs younger than its clock margin alone). */
function agePacks(dir: string): void {
  const old = new Date(Date.now() - 60_000);
  for (const f of readdirSync(join(dir, 'index'))) utimesSync(join(dir, 'index', f), old, old);
}

const point = (id: string, time: string, meta?: Record<string, unknown>): PointRow => ({
  id, source: 'db', time, kind: 'dir', manifest: [], logicalBytes: 0, files: 0, readBytes: 0, newBytes: 0, storedNewBytes: 0, durationMs: 0, parent: null, torn: 0, ...(meta ? { meta } : {}),
});

test('commitLog: seq in order, durable time, same bytes again is a duplicate, other bytes are CONFLICT', async () => {
  await withPool(async (pool) => {
    const a = randomBytes(200_000);
    const b = randomBytes(100_000);
    const r1 = await ship(pool, 'db', '000000010000000000000001', a, { timeline: 1, segno: 1 });
    const r2 = await ship(pool, 'db', '000000010000000000000002', b);
    assert.deepEqual([r1.seq, r1.duplicate, r2.seq, r2.duplicate], [1, false, 2, false]);
    assert.ok(r2.time >= r1.time);
    const again = await ship(pool, 'db', '000000010000000000000001', a);
    assert.deepEqual(again, { ...r1, duplicate: true, manifest: r1.manifest });
    await assert.rejects(ship(pool, 'db', '000000010000000000000001', randomBytes(200_000)), (e: { code?: string }) => e.code === 'CONFLICT');
    const rows = pool.catalog.logs('db');
    assert.deepEqual(rows.map((l) => [l.name, l.seq, l.bytes]), [['000000010000000000000001', 1, 200_000], ['000000010000000000000002', 2, 100_000]]);
    assert.deepEqual(rows[0]?.meta, { timeline: 1, segno: 1 });
    // The stored bytes read back exactly.
    const back = Buffer.concat(await pool.reader.read(rows[0]?.manifest ?? []));
    assert.ok(back.equals(a));
    // Another source's chain is its own.
    assert.equal((await ship(pool, 'other', '000000010000000000000001', b)).seq, 1);
  });
});

test('gc keeps the chunks of log records; pruning records no kept point needs lets gc free them', async () => {
  await withPool(async (pool, dir) => {
    const segs = [randomBytes(150_000), randomBytes(150_000), randomBytes(150_000)];
    for (let i = 0; i < 3; i++) await ship(pool, 'db', `00000001000000000000000${i + 1}`, segs[i] as Buffer);
    agePacks(dir);
    const g1 = await runGc(pool);
    assert.equal(g1.condemnedChunks, 0, 'no log chunk is garbage');
    for (const [i, l] of pool.catalog.logs('db').entries()) assert.ok(Buffer.concat(await pool.reader.read(l.manifest)).equals(segs[i] as Buffer));
    // A point whose backup started in segment 2: segment 1 is no longer needed.
    pool.catalog.addSource({ name: 'db', kind: 'dir', path: '/db', created: new Date().toISOString() });
    pool.catalog.insertPoint(point('p1', new Date().toISOString(), { startWal: '000000010000000000000002' }));
    assert.deepEqual(pruneLogs(pool, 'db').map((l) => l.seq), [1]);
    assert.deepEqual(pool.catalog.logs('db').map((l) => l.seq), [2, 3]);
    pool.catalog.deletePoint('p1'); // a hand-made point without a manifest: gc could not mark it
    assert.deepEqual(pruneLogs(pool, 'db'), [], 'without a point that says what it needs, nothing is pruned');
    agePacks(dir);
    const g2 = await runGc(pool);
    assert.equal(g2.condemnedChunks, 3, "segment 1's three chunks");
    for (const [i, l] of pool.catalog.logs('db').entries()) assert.ok(Buffer.concat(await pool.reader.read(l.manifest)).equals(segs[i + 1] as Buffer));
  });
});

test('verify --full reads log chunks and reports a log record whose chunk is missing', async () => {
  await withPool(async (pool) => {
    await ship(pool, 'db', '000000010000000000000001', randomBytes(100_000));
    const ok = await verifyPool(pool, { full: true, record: false });
    assert.equal(ok.ok, true);
    assert.equal(ok.logs, 1);
    assert.ok(ok.bytesRead > 0);
    // A record naming a chunk the pool never stored.
    pool.catalog.insertLog({ source: 'db', name: '000000010000000000000002', seq: 2, kind: 'pg-wal', time: new Date().toISOString(), meta: {}, manifest: [['ab'.repeat(32), 10]], bytes: 10 });
    const bad = await verifyPool(pool, { full: true, record: false });
    assert.equal(bad.ok, false);
    assert.deepEqual(bad.damagedLogs?.map((l) => l.name), ['000000010000000000000002']);
  });
});

test('logsForRestore: from the point on (a record durable after the target may end before it); reaches when one is durable at or after it', () => {
  const logs = [1, 2, 3, 4].map((i) => ({ source: 'db', name: `00000001000000000000000${i}`, seq: i, kind: 'pg-wal' as const, time: `2026-01-01T00:0${i}:00.000Z`, meta: {}, manifest: [], bytes: 0 }));
  const p = point('p', '2026-01-01T00:01:30.000Z', { startWal: '000000010000000000000002' });
  assert.deepEqual(logsForRestore(logs, p, '2026-01-01T00:02:30.000Z').logs.map((l) => l.seq), [2, 3, 4]);
  assert.equal(logsForRestore(logs, p, '2026-01-01T00:04:00.000Z').reaches, true);
  assert.deepEqual(logsForRestore(logs, p, '2026-01-01T00:09:00.000Z').reaches, false);
  assert.deepEqual(logsForRestore(logs, p).logs.map((l) => l.seq), [2, 3, 4]);
});

test('retention prunes a log chain only together with the express full it depends on', async () => {
  await withPool(async (pool) => {
    for (let i = 1; i <= 4; i++) await ship(pool, 'db', `00000001000000000000000${i}`, randomBytes(70_000));
    pool.catalog.addSource({ name: 'db', kind: 'dir', path: '/db', created: new Date().toISOString() });
    const t = (m: number): string => new Date(Date.now() - m * 60_000).toISOString();
    pool.catalog.insertPoint(point('full1', t(30), { startWal: '000000010000000000000001' }));
    pool.catalog.insertPoint(point('full2', t(20), { startWal: '000000010000000000000003' }));
    // keeping both fulls keeps the whole chain
    const none = await prunePoints(pool, { last: 2 }, { source: 'db' });
    assert.deepEqual([none.removed, none.logsRemoved], [0, 0]);
    assert.deepEqual(pool.catalog.logs('db').map((l) => l.seq), [1, 2, 3, 4]);
    // a dry run says which records would go with the point, and removes nothing
    const dry = await prunePoints(pool, { last: 1 }, { source: 'db', dryRun: true });
    assert.deepEqual([dry.removed, dry.logsRemoved, dry.logBytesRemoved], [1, 2, 140_000]);
    assert.deepEqual(dry.sources[0]?.logs, { records: 2, bytes: 140_000, first: '000000010000000000000001', last: '000000010000000000000002' });
    assert.deepEqual(pool.catalog.logs('db').map((l) => l.seq), [1, 2, 3, 4]);
    // pruning the older full takes the segments only it needed; the kept full's chain stays whole
    const r = await prunePoints(pool, { last: 1 }, { source: 'db' });
    assert.deepEqual([r.removed, r.logsRemoved], [1, 2]);
    assert.deepEqual(r.sources[0]?.logs, dry.sources[0]?.logs, 'what the dry run said');
    assert.deepEqual(pool.catalog.points('db').map((p) => p.id), ['full2']);
    assert.deepEqual(pool.catalog.logs('db').map((l) => l.name), ['000000010000000000000003', '000000010000000000000004']);
  });
});

test("usage counts log records: a source's unique bytes cover its shipped records, none of them is unreferenced", async () => {
  await withPool(async (pool) => {
    const a = randomBytes(200_000);
    const b = randomBytes(150_000);
    await ship(pool, 'db', '000000010000000000000001', a);
    await ship(pool, 'db', '000000010000000000000002', b);
    // The same bytes in another source's chain: shared between the two.
    await ship(pool, 'db2', '000000010000000000000001', b);
    const p1 = await dbPoint(pool, 'db', new Date().toISOString(), { startWal: '000000010000000000000001' });
    const stored = (data: Buffer): number => {
      let n = 0;
      for (let off = 0; off < data.length; off += 65536) n += pool.index.get(digestOf(data.subarray(off, off + 65536)))?.storedLength ?? 0;
      return n;
    };
    const u = await poolUsage(pool);
    const row = (s: string): SourceUsage | undefined => u.sources.find((x) => x.source === s);
    const pointBytes = [...(await pointDigests(pool.reader, p1.manifest))].reduce((n, d) => n + (pool.index.get(d)?.storedLength ?? 0), 0);
    assert.equal(row('db')?.uniqueBytes, pointBytes + stored(a));
    assert.equal(row('db')?.sharedBytes, stored(b));
    assert.deepEqual([row('db2')?.points, row('db2')?.uniqueBytes, row('db2')?.sharedBytes], [0, 0, stored(b)], 'a source with log records only has its row');
    assert.equal(u.unreferencedBytes, 0, 'gc would free none of it');
  });
});

test('SQLite: a chain is pruned by generation, only together with the snapshot that needed it', async () => {
  await withPool(async (pool) => {
    // Generation A from a base, B from a base (a reset the shipper could not follow), C following B.
    const records: Array<[string, Record<string, unknown>]> = [
      ['A-base', { type: 'base', generation: 'A', lastFrame: 0 }],
      ['A-1-9', { type: 'frames', generation: 'A', firstFrame: 1, lastFrame: 9 }],
      ['B-base', { type: 'base', generation: 'B', lastFrame: 0 }],
      ['B-1-4', { type: 'frames', generation: 'B', firstFrame: 1, lastFrame: 4 }],
      ['C-1-3', { type: 'frames', generation: 'C', firstFrame: 1, lastFrame: 3, follows: 'B', followsFrame: 4 }],
      ['C-4-8', { type: 'frames', generation: 'C', firstFrame: 4, lastFrame: 8 }],
    ];
    for (const [name, meta] of records) await ship(pool, 'lite', name, randomBytes(20_000), meta, 'sqlite-wal');
    pool.catalog.addSource({ name: 'lite', kind: 'dir', path: '/lite', created: new Date().toISOString() });
    const t = (m: number): string => new Date(Date.now() - m * 60_000).toISOString();
    const snap = (id: string, min: number, generation?: string): PointRow => ({ ...point(id, t(min), generation === undefined ? { lastFrame: 0 } : { generation, lastFrame: 2 }), source: 'lite' });
    pool.catalog.insertPoint(snap('none', 50)); // a copy taken without a WAL: it cannot say which records it needs
    pool.catalog.insertPoint(snap('a', 40, 'A'));
    pool.catalog.insertPoint(snap('b', 30, 'B'));
    pool.catalog.insertPoint(snap('c', 20, 'C'));
    const names = (): string[] => pool.catalog.logs('lite').map((l) => l.name);
    assert.equal((await prunePoints(pool, { last: 3 }, { source: 'lite' })).logsRemoved, 0, 'the oldest kept snapshot (A) needs its whole generation');
    assert.deepEqual(names(), records.map(([n]) => n));
    const dry = await prunePoints(pool, { last: 2 }, { source: 'lite', dryRun: true });
    assert.deepEqual(dry.sources[0]?.logs, { records: 2, bytes: 40_000, first: 'A-base', last: 'A-1-9' });
    assert.deepEqual(names(), records.map(([n]) => n), 'a dry run removes nothing');
    assert.equal((await prunePoints(pool, { last: 2 }, { source: 'lite' })).logsRemoved, 2);
    assert.deepEqual(names(), ['B-base', 'B-1-4', 'C-1-3', 'C-4-8'], "generation B's records stay with snapshot b");
    // Snapshot c needs C's records from its first one; B's go with snapshot b.
    const r = await prunePoints(pool, { last: 1 }, { source: 'lite' });
    assert.deepEqual([r.removed, r.logsRemoved], [1, 2]);
    assert.deepEqual(names(), ['C-1-3', 'C-4-8']);
    assert.deepEqual(logsForRestore(pool.catalog.logs('lite'), pool.catalog.points('lite')[0] as PointRow).logs.map((l) => l.name), ['C-1-3', 'C-4-8'], 'what a restore from c reads is all there');
  });
});

test('verify marks a point damaged when a log record its restore needs (its start to stop segment) is damaged', async () => {
  await withPool(async (pool) => {
    const seg = (n: number): string => `00000001000000000000000${n}`;
    const shipped = [];
    for (let n = 1; n <= 5; n++) shipped.push(await ship(pool, 'db', seg(n), randomBytes(70_000)));
    const t = (m: number): string => new Date(Date.now() - m * 60_000).toISOString();
    const full1 = await dbPoint(pool, 'db', t(30), { startWal: seg(2), stopWal: seg(3) });
    const full2 = await dbPoint(pool, 'db', t(20), { startWal: seg(5), stopWal: seg(5) });
    // Segment 3 ends full1's backup; segment 4 lies between the fulls (recovery past it fails, both fulls restore).
    await damageChunk(pool, shipped[2]?.manifest[0]?.[0] as string);
    await damageChunk(pool, shipped[3]?.manifest[1]?.[0] as string);
    const r = await verifyPool(pool, { full: true });
    assert.equal(r.ok, false);
    assert.deepEqual(r.damagedLogs?.map((l) => l.name), [seg(3), seg(4)]);
    assert.deepEqual(r.damagedPoints.map((p) => [p.point, p.files, p.logs]), [[full1.id, [], [seg(3)]]]);
    const verdict = new Map(pool.catalog.verifications().map((v) => [v.point, v]));
    assert.equal(verdict.get(full1.id)?.ok, false, 'recorded damaged');
    assert.match(verdict.get(full1.id)?.detail ?? '', new RegExp(`damaged log record\\(s\\) it needs: ${seg(3)}`));
    assert.equal(verdict.get(full2.id)?.ok, true, 'full2 needs neither');
  });
});

test('gc: a log name pruned and shipped again with other chunks while gc marks is marked again, its chunks kept', async () => {
  await withPool(async (pool, dir) => {
    const old = randomBytes(100_000); // stored for a record that is pruned before gc: unreferenced
    const first = randomBytes(100_000);
    const gone = await ship(pool, 'db', '000000010000000000000001', old);
    await ship(pool, 'db', '000000010000000000000002', first);
    assert.equal(pool.catalog.deleteLogsBefore('db', 2), 1);
    agePacks(dir);
    const name = '000000010000000000000002';
    await runGc(pool, {
      onStep: async (step) => {
        if (step !== 'marked') return;
        // Between mark and condemn: the record goes, and one of that name comes back holding the
        // chunks gc has just seen unreferenced (a re-shipped segment reusing stored chunks).
        pool.catalog.deleteLogsBefore('db', 3);
        await pool.commitLog({ source: 'db', name, kind: 'pg-wal', meta: {}, manifest: gone.manifest }, undefined);
      },
    });
    const row = pool.catalog.log('db', name);
    assert.deepEqual(row?.manifest, gone.manifest);
    const back = Buffer.concat(await pool.reader.read(row?.manifest ?? []));
    assert.ok(back.equals(old), 'the record reads back whole after gc');
    assert.equal((await verifyPool(pool, { full: true })).ok, true);
  });
});
