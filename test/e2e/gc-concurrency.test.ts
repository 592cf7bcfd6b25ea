/**
 * The gc race of PSA-2025-00019-1, attacked: backups of two sources, prune (and deletion of the
 * very point a running backup uses as its parent) and gc run at the same time as separate CLI
 * processes for a while, over file contents drawn from a few variants so that backups keep
 * reusing chunks that pruning just made garbage. Afterwards `verify --full` passes and every
 * remaining recovery point restores bit-exact to the tree it was taken from.
 *
 * A backup may fail with RETRY (exit 75) when gc condemned a chunk it reused; that is the commit
 * check working, and the loop runs it again. The same race at a much higher rate, in one process
 * with four pool instances, is gc-race.test.ts. HOLDFAST_GC_SOAK_MS makes it run longer
 * (npm run soak:gc); HOLDFAST_GC_SEED replays the same file contents.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, scratch, snapshotTree, diffSnapshots, type NodeSnapshot } from './cli-harness.js';
import { mapLimit, prng, randInt } from './tree-fixtures.js';

const RUN_MS = Number(process.env.HOLDFAST_GC_SOAK_MS ?? 30_000);
const FILES = 10;
const VARIANTS = 4;

/** Contents of file i in variant v: the same bytes in both sources, so chunks are shared too. */
function content(seed: number, i: number, v: number): Buffer {
  const rng = prng(seed * 1000 + i * VARIANTS + v);
  const size = 20_000 + Math.floor(rng() * 300_000);
  const buf = Buffer.alloc(size);
  for (let o = 0; o + 4 <= size; o += 4) buf.writeUInt32LE(Math.floor(rng() * 2 ** 32), o);
  return buf;
}

test('concurrent backup, prune and gc loops leave every remaining recovery point restorable', { timeout: RUN_MS + 240_000 }, async (t) => {
  const seed = Number(process.env.HOLDFAST_GC_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rng = prng(seed);
  const s = scratch('holdfast-gcrace-');
  const pool = join(s.dir, 'pool');
  const taken = new Map<string, { source: string; snap: Map<string, NodeSnapshot> }>();
  const stats = { backups: 0, retries: 0, prunes: 0, deletes: 0, gcs: 0, freed: 0, condemned: 0, repacked: 0 };
  const failures: string[] = [];
  const deadline = Date.now() + RUN_MS;

  const backupLoop = async (source: string): Promise<void> => {
    const src = join(s.dir, source);
    mkdirSync(src);
    const version = Array.from({ length: FILES }, () => randInt(rng, 0, VARIANTS - 1));
    for (let i = 0; i < FILES; i++) writeFileSync(join(src, `f${i}`), content(seed, i, version[i] as number));
    while (Date.now() < deadline && failures.length === 0) {
      // Change one to three files to another variant: often back to bytes a pruned point had.
      for (let k = randInt(rng, 1, 3); k > 0; k--) {
        const i = randInt(rng, 0, FILES - 1);
        version[i] = ((version[i] as number) + randInt(rng, 1, VARIANTS - 1)) % VARIANTS;
        writeFileSync(join(src, `f${i}`), content(seed, i, version[i]));
      }
      const snap = snapshotTree(src, { skipRootMeta: true });
      for (let attempt = 0; ; attempt++) {
        const r = await holdfast(['backup', '--pool', pool, '--source', source, src, '--json']);
        if (r.code === 0) {
          taken.set((JSON.parse(r.stdout) as { point: string }).point, { source, snap });
          stats.backups++;
          break;
        }
        if (r.code === 75 && attempt < 5) {
          stats.retries++;
          continue;
        }
        failures.push(`backup of ${source} exited ${r.code}: ${r.stderr}`);
        return;
      }
    }
  };

  const pruneLoop = async (): Promise<void> => {
    while (Date.now() < deadline && failures.length === 0) {
      const source = rng() < 0.5 ? 'alpha' : 'beta';
      let r;
      if (rng() < 0.5) {
        r = await holdfast(['prune', '--pool', pool, '--source', source, '--keep-last', String(randInt(rng, 1, 3)), '--json']);
        stats.prunes++;
      } else {
        const list = await holdfast(['points', '--pool', pool, '--source', source, '--json']);
        const points = list.code === 0 ? (JSON.parse(list.stdout) as Array<{ id: string }>) : [];
        // Mostly the newest point: the parent a running backup of this source is reusing.
        const victim = rng() < 0.7 ? points.at(-1) : points[randInt(rng, 0, Math.max(0, points.length - 1))];
        if (!victim || points.length < 2) {
          await new Promise((res) => setTimeout(res, 50));
          continue;
        }
        r = await holdfast(['points', 'delete', '--pool', pool, '--source', source, victim.id, '--json']);
        stats.deletes++;
      }
      if (r.code !== 0 && !/no source named/.test(r.stderr)) failures.push(`prune exited ${r.code}: ${r.stderr}`);
    }
  };

  const gcLoop = async (): Promise<void> => {
    while (Date.now() < deadline && failures.length === 0) {
      const r = await holdfast(['gc', '--pool', pool, '--repack-below', rng() < 0.5 ? '0.5' : '0.95', '--json']);
      if (r.code !== 0) {
        failures.push(`gc exited ${r.code}: ${r.stderr}`);
        return;
      }
      const g = JSON.parse(r.stdout) as { bytesFreed: number; condemnedChunks: number; packsRepacked: number };
      stats.gcs++;
      stats.freed += g.bytesFreed;
      stats.condemned += g.condemnedChunks;
      stats.repacked += g.packsRepacked;
    }
  };

  try {
    assert.equal((await holdfast(['pool', 'init', pool])).code, 0);
    await Promise.all([backupLoop('alpha'), backupLoop('beta'), pruneLoop(), gcLoop()]);
    const summary = `seed ${seed}: ${JSON.stringify(stats)}`;
    t.diagnostic(summary);
    assert.deepEqual(failures, [], summary);

    // One last gc with nothing running, then everything that is left must be whole.
    assert.equal((await holdfast(['gc', '--pool', pool])).code, 0);
    const verify = await holdfast(['verify', '--pool', pool, '--full']);
    assert.equal(verify.code, 0, `verify --full after the race:\n${verify.stdout}${verify.stderr}\n${summary}`);
    const remaining: Array<{ id: string; source: string }> = [];
    for (const source of ['alpha', 'beta']) {
      const r = await holdfast(['points', '--pool', pool, '--source', source, '--json']);
      assert.equal(r.code, 0, r.stderr);
      remaining.push(...(JSON.parse(r.stdout) as Array<{ id: string; source: string }>));
    }
    assert.ok(remaining.length >= 2, summary);
    await mapLimit(remaining, 2, async (p) => {
      const want = taken.get(p.id);
      assert.ok(want, `point ${p.id} was not made by this test`);
      const to = join(s.dir, `restore-${p.id}`);
      const r = await holdfast(['restore', '--pool', pool, '--source', p.source, '--point', p.id, '--to', to]);
      assert.equal(r.code, 0, `restore of ${p.source} ${p.id}: ${r.stderr}\n${summary}`);
      assert.deepEqual(diffSnapshots(want.snap, snapshotTree(to, { skipRootMeta: true })).slice(0, 5), [], `point ${p.id} of ${p.source}\n${summary}`);
      rmSync(to, { recursive: true, force: true });
    });
    t.diagnostic(`${remaining.length} remaining points restored bit-exact`);
    assert.ok(stats.backups >= 4 && stats.gcs >= 2, `too little happened: ${summary}`);
  } finally {
    s.cleanup();
  }
});
