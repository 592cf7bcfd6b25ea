/**
 * Verification results and healing: a byte flipped in a pack is named by `verify --full`, which
 * records the recovery point as damaged and takes the chunk out of service; the next backup of
 * the source (which still has the data) sends the chunk again, after which `verify --full`
 * passes, the new point restores bit-exact, and so does the old point (through the healed copy).
 * `--older-than` then re-hashes only packs not re-hashed recently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, holdfastJson, scratch } from './cli-harness.js';
import { backupPoint, flipByte, initPool, writeRandomFile } from './pool-fixtures.js';
import { Pool } from '../../src/pool/pool.js';
import { readManifest } from '../../src/core/manifest-io.js';
import { hasContent } from '../../src/core/manifest.js';
import type { VerifyReport } from '../../src/pool/verify.js';

test('verify names a flipped byte, records it, and the next backup heals it', async () => {
  const s = scratch('holdfast-heal-');
  const pool = join(s.dir, 'pool');
  const src = join(s.dir, 'src');
  try {
    await initPool(pool);
    mkdirSync(src);
    const dataA = writeRandomFile(join(src, 'a.bin'), 700_000);
    const dataB = writeRandomFile(join(src, 'b.bin'), 200_000);
    const p1 = await backupPoint(pool, 'docs', src);

    // The first chunk of a.bin, and where it is stored.
    const p = await Pool.open(pool);
    let digest = '';
    let at = 0;
    let pack = '';
    try {
      const row = p.catalog.point(p1);
      assert.ok(row);
      for await (const e of readManifest(p.reader, row.manifest)) {
        if (hasContent(e) && e.path === 'a.bin') digest = (e.chunks[0] as [string, number])[0];
      }
      const loc = p.index.get(digest);
      assert.ok(loc);
      pack = loc.pack;
      at = loc.offset + Math.floor(loc.storedLength / 2);
    } finally {
      await p.close();
    }
    flipByte(join(pool, 'packs', pack.slice(0, 2), `${pack}.pack`), at);

    const bad = await holdfast(['verify', '--pool', pool, '--full', '--json']);
    assert.equal(bad.code, 4, bad.stderr);
    const r1 = JSON.parse(bad.stdout) as VerifyReport;
    assert.deepEqual(r1.damagedChunks.map((c) => [c.digest, c.pack]), [[digest, pack]]);
    assert.deepEqual(r1.damagedPoints.map((d) => [d.point, d.files]), [[p1, ['a.bin']]]);
    assert.equal(r1.condemned, 1);

    const p2 = await backupPoint(pool, 'docs', src);
    const r2 = await holdfastJson<VerifyReport>(['verify', '--pool', pool, '--full']);
    assert.ok(r2.ok, JSON.stringify(r2));
    assert.equal(r2.points, 2);

    for (const point of [p2, p1]) {
      const to = join(s.dir, `restore-${point}`);
      const res = await holdfast(['restore', '--pool', pool, '--source', 'docs', '--point', point, '--to', to]);
      assert.equal(res.code, 0, res.stderr);
      assert.ok(readFileSync(join(to, 'a.bin')).equals(dataA), `a.bin of ${point}`);
      assert.ok(readFileSync(join(to, 'b.bin')).equals(dataB), `b.bin of ${point}`);
    }

    // Results are recorded per point: both sound now.
    const q = await Pool.open(pool);
    try {
      const v = new Map(q.catalog.verifications().map((x) => [x.point, x]));
      assert.equal(v.get(p1)?.ok, true);
      assert.equal(v.get(p2)?.ok, true);
      assert.equal(v.get(p1)?.full, true);
    } finally {
      await q.close();
    }

    // Everything was re-hashed just now: --older-than 1d re-hashes nothing.
    const r3 = await holdfastJson<VerifyReport>(['verify', '--pool', pool, '--full', '--older-than', '1d']);
    assert.ok(r3.ok);
    assert.equal(r3.bytesRead, 0);
    assert.equal(r3.recentPacks, r3.packs);
    // gc drops the damaged copy; everything still verifies.
    assert.equal((await holdfast(['gc', '--pool', pool, '--repack-below', '0.99'])).code, 0);
    assert.ok((await holdfastJson<VerifyReport>(['verify', '--pool', pool, '--full'])).ok);
  } finally {
    s.cleanup();
  }
});
