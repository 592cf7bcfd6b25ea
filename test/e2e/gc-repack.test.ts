/**
 * Space comes back by repacking: a pack that keeps about 30% live data once a point is deleted is
 * copied (its live chunks into a new pack) and deleted by a default gc; one that keeps about 60%
 * is left alone (DEFAULT_REPACK_BELOW is 0.5). The remaining points then restore exactly and
 * verify --full passes. Backups and restores run in process, through the functions the CLI's
 * `backup` and `restore` use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { scratch, snapshotTree, type NodeSnapshot } from './cli-harness.js';
import { writeRandomFile } from './pool-fixtures.js';
import { Pool } from '../../src/pool/pool.js';
import { DEFAULT_REPACK_BELOW, runGc } from '../../src/pool/gc.js';
import { loadPackTable } from '../../src/pool/gc-packs.js';
import { pointDigests } from '../../src/pool/point-digests.js';
import { deletePoint } from '../../src/pool/point-admin.js';
import { verifyPool } from '../../src/pool/verify.js';
import { localBackup, localRestore } from '../../src/cli/local-engine.js';

/** Ages every index file past gc's clock margin (it judges no pack younger than 2 s). */
function ageIndexFiles(pool: string): void {
  const old = new Date(Date.now() - 60_000);
  for (const f of readdirSync(join(pool, 'index'))) utimesSync(join(pool, 'index', f), old, old);
}

test('gc repacks a pack left 30% live by a deleted point, leaves a 60% live one alone, and every remaining point restores exactly', async () => {
  const s = scratch('holdfast-repack-');
  const dir = join(s.dir, 'pool');
  const cases = [
    { source: 'thirty', keep: 300_000, drop: 700_000 },
    { source: 'sixty', keep: 600_000, drop: 400_000 },
  ];
  const taken = new Map<string, { point: string; snap: Map<string, NodeSnapshot> }>();
  await Pool.init(dir);
  let pool: Pool | undefined = await Pool.open(dir);
  try {
    for (const c of cases) {
      // One backup of both files: one pack (random data, stored as is). The next backup without
      // drop.bin reuses keep.bin's chunks; deleting the first point leaves the pack keep/(keep+drop) live.
      const src = join(s.dir, c.source);
      mkdirSync(src);
      writeRandomFile(join(src, 'keep.bin'), c.keep);
      writeRandomFile(join(src, 'drop.bin'), c.drop);
      const first = await localBackup(pool, { source: c.source, kind: 'dir', path: src });
      rmSync(join(src, 'drop.bin'));
      const second = await localBackup(pool, { source: c.source, kind: 'dir', path: src });
      taken.set(c.source, { point: second.point, snap: snapshotTree(src, { skipRootMeta: true }) });
      await deletePoint(pool, c.source, first.point);
    }
    ageIndexFiles(dir);

    // The premise, measured: each first pack's live share, against the default threshold.
    const live = new Set<string>();
    for (const p of pool.catalog.points()) for (const d of await pointDigests(pool.reader, p.manifest)) live.add(d);
    const packs = (await loadPackTable(pool.paths)).packs;
    const share = new Map<string, number>();
    for (const p of packs.values()) share.set(p.id, p.entries.reduce((n, e) => n + (live.has(e.digest) ? e.storedLength : 0), 0) / p.dataBytes);
    const sparse = [...share].filter(([, x]) => x < 1);
    assert.equal(sparse.length, 2, `two packs hold garbage: ${JSON.stringify([...share])}`);
    const [thirty, sixty] = [...sparse].sort((a, b) => a[1] - b[1]).map(([id, x]) => ({ id, x })) as [{ id: string; x: number }, { id: string; x: number }];
    assert.ok(thirty.x > 0.2 && thirty.x < 0.4 && thirty.x < DEFAULT_REPACK_BELOW, `the 30% pack is ${thirty.x.toFixed(3)} live`);
    assert.ok(sixty.x > 0.5 && sixty.x < 0.7 && sixty.x >= DEFAULT_REPACK_BELOW, `the 60% pack is ${sixty.x.toFixed(3)} live`);

    const dry = await runGc(pool, { dryRun: true });
    assert.deepEqual([dry.packsRepacked, dry.packsDeleted], [1, 1], JSON.stringify(dry));
    assert.ok(existsSync(pool.paths.pack(thirty.id)), 'a dry run deletes nothing');

    const r = await runGc(pool);
    assert.equal(r.packsRepacked, 1, JSON.stringify(r));
    assert.equal(r.packsDeleted, 1, 'only the repacked pack goes');
    assert.ok(r.packsWritten >= 1, 'its live chunks went into a new pack');
    // About drop.bin's 700 kB come back: the old pack (about 1 MB) less the 300 kB copied.
    assert.ok(r.bytesFreed > 600_000, `bytes freed: ${r.bytesFreed}`);
    assert.ok(r.bytesRewritten > 250_000 && r.bytesRewritten < 350_000, `bytes copied: ${r.bytesRewritten}`);
    assert.ok(!existsSync(pool.paths.pack(thirty.id)) && !existsSync(pool.paths.indexFile(thirty.id)), 'the 30% pack and its index file are gone');
    assert.ok(existsSync(pool.paths.pack(sixty.id)) && existsSync(pool.paths.indexFile(sixty.id)), 'the 60% pack stays');
    assert.equal((await runGc(pool)).packsRepacked, 0, 'a second gc leaves the 60% pack alone too');
    await pool.close();
    pool = undefined;

    // A fresh process's view: the points restore exactly, and everything verifies.
    pool = await Pool.open(dir);
    for (const c of cases) {
      const want = taken.get(c.source);
      assert.ok(want);
      const to = join(s.dir, `restore-${c.source}`);
      await localRestore(pool, { source: c.source, point: want.point, to, overwrite: false });
      assert.deepEqual(snapshotTree(to, { skipRootMeta: true }), want.snap, `restore of ${c.source}`);
    }
    const v = await verifyPool(pool, { full: true });
    assert.ok(v.ok, JSON.stringify({ problems: v.problems, chunks: v.damagedChunks, points: v.damagedPoints }));
    assert.equal(v.points, 2);
  } finally {
    await pool?.close();
    s.cleanup();
  }
});
