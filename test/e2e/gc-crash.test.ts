/**
 * Crash safety of gc: gc killed with SIGKILL at random moments (while marking, right after it
 * condemns, while it writes repacked packs, while it deletes) never harms a committed recovery
 * point. After every kill a quick verify passes; at the end a gc runs to completion, removes
 * what the killed runs left behind, `verify --full` passes, and every remaining point restores
 * bit-exact. HOLDFAST_GC_CRASH_SEED replays the same tree changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { holdfast, holdfastJson, scratch, snapshotTree, diffSnapshots, type NodeSnapshot } from './cli-harness.js';
import { buildTree, mapLimit, mutateTree, prng, randInt, startHoldfast } from './tree-fixtures.js';
import { Pool } from '../../src/pool/pool.js';
import type { GcReport } from '../../src/pool/gc.js';
import type { VerifyReport } from '../../src/pool/verify.js';

const MiB = 1024 * 1024;
const BIG = 6 * MiB;
const ITERATIONS = 8;

test('gc killed with SIGKILL at random moments leaves every recovery point whole', async (t) => {
  const seed = Number(process.env.HOLDFAST_GC_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rng = prng(seed);
  const s = scratch('holdfast-gccrash-');
  const pool = join(s.dir, 'pool');
  const src = join(s.dir, 'src');
  const snaps = new Map<string, Map<string, NodeSnapshot>>();
  const log: string[] = [];
  const context = (): string => `seed ${seed}\n${log.join('\n')}`;

  const backup = async (): Promise<string> => {
    const snap = snapshotTree(src, { skipRootMeta: true });
    const r = await holdfastJson<{ point: string }>(['backup', '--pool', pool, '--source', 'data', src]);
    snaps.set(r.point, snap);
    return r.point;
  };
  /** Garbage for the next gc: a new point, and an older one deleted (the first one is kept). */
  const churn = async (): Promise<void> => {
    mutateTree(src, rng, { bigFile: BIG });
    await backup();
    const points = [...snaps.keys()];
    if (points.length > 3) {
      const victim = points[randInt(rng, 1, points.length - 2)] as string;
      assert.equal((await holdfast(['points', 'delete', '--pool', pool, '--source', 'data', victim])).code, 0);
      snaps.delete(victim);
    }
  };

  try {
    // Small packs: more of them to delete and repack, so kills land inside that work.
    await Pool.init(pool, { packSize: 1 * MiB });
    buildTree(src, rng, { files: 100, bigFile: BIG });
    await backup();
    for (let i = 0; i < 3; i++) await churn();
    const timed: number[] = [];
    for (let i = 0; i < 1; i++) {
      await churn();
      const t0 = performance.now();
      await holdfastJson<GcReport>(['gc', '--pool', pool, '--repack-below', '0.95']);
      timed.push(performance.now() - t0);
    }
    const span = Math.max(...timed) * 1.2;

    let killed = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      await churn();
      const cli = startHoldfast(['gc', '--pool', pool, '--repack-below', '0.95', '--json']);
      const timers: NodeJS.Timeout[] = [];
      let watcher: FSWatcher | undefined;
      let how: string;
      if (i % 2 === 0) {
        const ms = Math.round(rng() * span);
        how = `after ${ms} ms`;
        timers.push(setTimeout(() => cli.child.kill('SIGKILL'), ms));
      } else {
        // Inside the sweep: just after gc deletes (index/) or writes (packs/) something.
        const where = rng() < 0.5 ? 'index' : 'packs';
        const jitter = randInt(rng, 0, 20);
        how = `${jitter} ms after a change in ${where}/`;
        watcher = watch(join(pool, where), { recursive: where === 'packs' }, () => {
          watcher?.close();
          timers.push(setTimeout(() => cli.child.kill('SIGKILL'), jitter));
        });
      }
      const res = await cli.done;
      watcher?.close();
      for (const tm of timers) clearTimeout(tm);
      if (res.signal === 'SIGKILL') killed++;
      else assert.equal(res.code, 0, `gc failed on its own: ${res.stderr}\n${context()}`);
      log.push(`#${i} kill ${how}: ${res.signal === 'SIGKILL' ? 'killed' : 'completed'}`);
      const v = await holdfast(['verify', '--pool', pool, '--json']);
      assert.equal(v.code, 0, `quick verify after gc #${i} (${how}):\n${v.stdout}${v.stderr}\n${context()}`);
    }
    assert.ok(killed >= ITERATIONS / 3, `only ${killed} of ${ITERATIONS} gc runs were killed\n${context()}`);

    // gc removes a killed run's leftovers once they are older than its clock margin (2 s): a pack the
    // last killed run was writing a moment ago is still too young for the gc right after it.
    await new Promise((r) => setTimeout(r, 2500));
    const last = await holdfastJson<GcReport>(['gc', '--pool', pool]);
    const full = await holdfastJson<VerifyReport>(['verify', '--pool', pool, '--full']);
    assert.ok(full.ok, `verify --full: ${JSON.stringify(full).slice(0, 2000)}\n${context()}`);
    // What the killed runs left behind is gone: no temporary files, no pack without its index.
    const temps = ['packs', 'index', 'points'].flatMap((d) => readdirSync(join(pool, d), { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('.tmp-')));
    assert.deepEqual(temps, [], context());
    const packs = readdirSync(join(pool, 'packs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.pack')).map((f) => f.slice(3, -5)).sort();
    const indexes = readdirSync(join(pool, 'index')).filter((f) => f.endsWith('.idx')).map((f) => f.slice(0, -4)).sort();
    assert.deepEqual(packs, indexes, `packs and index files match\n${context()}`);

    const points = await holdfastJson<Array<{ id: string }>>(['points', '--pool', pool, '--source', 'data']);
    await mapLimit(points, 2, async (p) => {
      const want = snaps.get(p.id);
      assert.ok(want, `point ${p.id} unknown`);
      const to = join(s.dir, `restore-${p.id}`);
      const r = await holdfast(['restore', '--pool', pool, '--source', 'data', '--point', p.id, '--to', to]);
      assert.equal(r.code, 0, `restore ${p.id}: ${r.stderr}\n${context()}`);
      assert.deepEqual(diffSnapshots(want, snapshotTree(to, { skipRootMeta: true })).slice(0, 5), [], `point ${p.id}\n${context()}`);
      rmSync(to, { recursive: true, force: true });
    });
    for (const l of log) t.diagnostic(l);
    t.diagnostic(`seed ${seed}: ${killed} of ${ITERATIONS} gc runs killed; final gc freed ${last.bytesFreed} bytes, ${last.leftovers.packs} orphan packs and ${last.leftovers.tempFiles} temporary files; ${points.length} points restored bit-exact`);
  } finally {
    s.cleanup();
  }
});
