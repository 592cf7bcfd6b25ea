/**
 * Retention and space from the command line: usage reports logical, unique and shared bytes per
 * source; prune (dry run first) removes what the policy does not keep and never a pinned point;
 * points delete refuses a pinned point and removes an unpinned one; gc --dry-run changes nothing
 * and gc frees what it said; the points that are left still restore bit-exact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, holdfastJson, scratch } from './cli-harness.js';
import { backupPoint, initPool, writeRandomFile } from './pool-fixtures.js';
import type { PoolUsage } from '../../src/pool/usage.js';
import type { PruneResult } from '../../src/pool/point-admin.js';
import type { GcReport } from '../../src/pool/gc.js';
import type { VerifyReport } from '../../src/pool/verify.js';

const MiB = 1024 * 1024;

test('usage, prune, pin, points delete and gc from the CLI', async (t) => {
  const s = scratch('holdfast-retention-');
  const pool = join(s.dir, 'pool');
  const one = join(s.dir, 'one');
  const two = join(s.dir, 'two');
  const listPacks = (): string[] => readdirSync(join(pool, 'packs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.pack')).sort();
  const ids = async (source: string): Promise<string[]> => (await holdfastJson<Array<{ id: string }>>(['points', '--pool', pool, '--source', source])).map((p) => p.id);
  try {
    await initPool(pool);
    mkdirSync(one);
    mkdirSync(two);
    const shared = writeRandomFile(join(one, 'shared.bin'), 2 * MiB);
    copyFileSync(join(one, 'shared.bin'), join(two, 'shared.bin'));
    const only2 = writeRandomFile(join(two, 'own.bin'), 1 * MiB);
    const points: string[] = [];
    let last: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 4; i++) {
      last = writeRandomFile(join(one, 'changing.bin'), 3 * MiB); // 3 MiB of garbage per pruned point
      points.push(await backupPoint(pool, 'one', one));
    }
    const p5 = await backupPoint(pool, 'two', two);

    const u = await holdfastJson<PoolUsage>(['usage', '--pool', pool]);
    assert.ok(u.capacityBytes > 0 && u.freeBytes > 0 && u.usedBytes > 0);
    const [u1, u2] = [u.sources.find((x) => x.source === 'one'), u.sources.find((x) => x.source === 'two')];
    assert.ok(u1 && u2);
    assert.equal(u1.points, 4);
    assert.ok(u1.uniqueBytes >= 12 * MiB && u1.uniqueBytes < 13 * MiB, `one: unique ${u1.uniqueBytes}`);
    assert.ok(u1.sharedBytes >= 2 * MiB && u1.sharedBytes < 2.2 * MiB, `one: shared ${u1.sharedBytes}`);
    assert.ok(u2.uniqueBytes >= 1 * MiB && u2.uniqueBytes < 1.2 * MiB, `two: unique ${u2.uniqueBytes}`);
    assert.equal(u2.sharedBytes, u1.sharedBytes);
    assert.equal(u1.allLogicalBytes, 4 * u1.latestLogicalBytes);
    assert.equal(u1.defaultAllocation.replicaBytes, Math.ceil(1.5 * u1.latestLogicalBytes));

    // Pin the oldest point by a prefix of its id; prune keeps it and the newest.
    const [p1, p2, p3, p4] = points as [string, string, string, string];
    assert.equal((await holdfast(['points', 'pin', '--pool', pool, '--source', 'one', p1.slice(0, 6)])).code, 0);
    const dry = await holdfastJson<PruneResult>(['prune', '--pool', pool, '--source', 'one', '--keep-last', '1', '--dry-run']);
    assert.deepEqual(dry.sources[0]?.remove.map((p) => p.id), [p3, p2]);
    assert.deepEqual(dry.sources[0]?.keep.map((k) => [k.id, k.reasons]), [[p4, ['last']], [p1, ['pinned']]]);
    assert.deepEqual(await ids('one'), points, 'a dry run removes nothing');
    const done = await holdfastJson<PruneResult>(['prune', '--pool', pool, '--source', 'one', '--keep-last', '1']);
    assert.equal(done.removed, 2);
    assert.deepEqual(await ids('one'), [p1, p4]);
    assert.deepEqual(await ids('two'), [p5], 'prune --source leaves other sources alone');

    // A pinned point cannot be deleted by hand either, until it is unpinned.
    const refused = await holdfast(['points', 'delete', '--pool', pool, '--source', 'one', p1]);
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, /pinned/);
    assert.equal((await holdfast(['points', 'unpin', '--pool', pool, '--source', 'one', p1])).code, 0);
    assert.equal((await holdfast(['points', 'delete', '--pool', pool, '--source', 'one', p1])).code, 0);
    assert.deepEqual(await ids('one'), [p4]);

    // gc: the dry run changes nothing; the real run frees about what it said.
    const before = listPacks();
    const plan = await holdfastJson<GcReport>(['gc', '--pool', pool, '--dry-run']);
    assert.deepEqual(listPacks(), before);
    assert.ok(plan.bytesFreed >= 9 * MiB, `dry run would free ${plan.bytesFreed}`);
    const t0 = performance.now();
    const r = await holdfastJson<GcReport>(['gc', '--pool', pool]);
    const ms = performance.now() - t0;
    assert.ok(r.bytesFreed >= 9 * MiB && r.bytesFreed <= plan.bytesFreed + MiB, `gc freed ${r.bytesFreed}, planned ${plan.bytesFreed}`);
    assert.equal(r.condemnedChunks, plan.condemnedChunks);
    t.diagnostic(`gc freed ${(r.bytesFreed / MiB).toFixed(1)} MiB (${r.chunksFreed} chunks, ${r.packsDeleted} packs, ${r.packsRepacked} repacked) in ${Math.round(ms)} ms wall (${r.durationMs} ms in gc)`);
    const again = await holdfastJson<GcReport>(['gc', '--pool', pool]);
    assert.equal(again.bytesFreed, 0, 'a second gc finds nothing');

    assert.ok((await holdfastJson<VerifyReport>(['verify', '--pool', pool, '--full'])).ok);
    for (const [source, point, files] of [
      ['one', p4, { 'shared.bin': shared, 'changing.bin': last }],
      ['two', p5, { 'shared.bin': shared, 'own.bin': only2 }],
    ] as const) {
      const to = join(s.dir, `restore-${point}`);
      const res = await holdfast(['restore', '--pool', pool, '--source', source, '--point', point, '--to', to]);
      assert.equal(res.code, 0, res.stderr);
      for (const [name, data] of Object.entries(files)) assert.ok(readFileSync(join(to, name)).equals(data), `${source} ${name}`);
    }
    const after = await holdfastJson<PoolUsage>(['usage', '--pool', pool]);
    assert.ok((after.sources.find((x) => x.source === 'one')?.uniqueBytes ?? 0) < 4 * MiB);
  } finally {
    s.cleanup();
  }
});
