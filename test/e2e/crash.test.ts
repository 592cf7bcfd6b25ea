/**
 * Crash safety: backups killed with SIGKILL at random moments never damage the pool. After many
 * kills `verify --full` passes, and every recovery point that exists restores bit-exact to the
 * tree as it was when the run that made it started.
 *
 * Set HOLDFAST_CRASH_SEED to replay the same tree changes (kill times are still random).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { holdfast, holdfastJson, scratch, snapshotTree, diffSnapshots, type NodeSnapshot } from './cli-harness.js';
import { buildTree, mapLimit, mutateTree, prng, randInt, startHoldfast } from './tree-fixtures.js';

const MiB = 1024 * 1024;
const BIG = 24 * MiB;
const ITERATIONS = 25;

/** When to kill: after a delay, or just after the backup first writes into one pool folder. */
type Kill = { afterMs: number } | { onWriteIn: 'packs' | 'index' | 'points'; jitterMs: number } | null;

interface Run {
  n: number;
  start: number;
  snap: Map<string, NodeSnapshot>;
  kill: string;
  outcome: string;
  point?: string;
}

interface PointJson {
  id: string;
  time: string;
}

test('backups killed with SIGKILL at random moments leave every recovery point whole', async (t) => {
  const seed = Number(process.env.HOLDFAST_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rng = prng(seed);
  const s = scratch('holdfast-crash-');
  const pool = join(s.dir, 'pool');
  const src = join(s.dir, 'src');
  const runs: Run[] = [];
  const context = (): string => `seed ${seed}; runs:\n${runs.map((r) => `  #${r.n} kill ${r.kill}: ${r.outcome}${r.point ? ` -> ${r.point}` : ''}`).join('\n')}`;

  /** Starts a backup of the tree as it is now and kills it as `kill` says (null: let it finish). */
  const run = async (kill: Kill): Promise<{ run: Run; ms: number }> => {
    const snap = snapshotTree(src, { skipRootMeta: true });
    const label = kill === null ? 'never' : 'afterMs' in kill ? `after ${kill.afterMs} ms` : `${kill.jitterMs} ms after a write in ${kill.onWriteIn}/`;
    const r: Run = { n: runs.length, start: Date.now(), snap, kill: label, outcome: '' };
    runs.push(r);
    const t0 = performance.now();
    const cli = startHoldfast(['backup', '--pool', pool, '--source', 'crash', src, '--json']);
    const timers: NodeJS.Timeout[] = [];
    let watcher: FSWatcher | undefined;
    if (kill && 'afterMs' in kill) timers.push(setTimeout(() => cli.child.kill('SIGKILL'), kill.afterMs));
    else if (kill) {
      watcher = watch(join(pool, kill.onWriteIn), { recursive: kill.onWriteIn === 'packs' }, () => {
        watcher?.close();
        timers.push(setTimeout(() => cli.child.kill('SIGKILL'), kill.jitterMs));
      });
    }
    const res = await cli.done;
    const ms = performance.now() - t0;
    watcher?.close();
    for (const tm of timers) clearTimeout(tm);
    if (res.signal === 'SIGKILL') r.outcome = `killed at ${Math.round(ms)} ms`;
    else if (res.code === 0) {
      r.point = (JSON.parse(res.stdout) as { point: string }).point;
      r.outcome = `completed in ${Math.round(ms)} ms`;
    } else r.outcome = `exited ${res.code}: ${res.stderr.trim()}`;
    return { run: r, ms };
  };

  try {
    buildTree(src, rng, { files: 300, bigFile: BIG });
    assert.equal((await holdfast(['pool', 'init', pool])).code, 0);
    await run(null); // the full backup: later runs are incrementals on top of it
    // Typical duration of the runs to be killed: an incremental after the same kind of change.
    const typical: number[] = [];
    for (let i = 0; i < 2; i++) {
      mutateTree(src, rng, { bigFile: BIG });
      typical.push((await run(null)).ms);
    }
    const span = Math.max(...typical) * 1.2;

    const dirs = ['packs', 'index', 'points'] as const;
    for (let i = 0; i < ITERATIONS; i++) {
      mutateTree(src, rng, { bigFile: BIG });
      // Mostly a random moment of the whole run; every third run a random moment of the short
      // commit phase (packs, then index, then point file and catalog row), which a uniform
      // delay rarely hits.
      if (i % 3 === 2) await run({ onWriteIn: dirs[randInt(rng, 0, 2)] as (typeof dirs)[number], jitterMs: randInt(rng, 0, 15) });
      else await run({ afterMs: Math.round(rng() * span) });
    }
    const verify = await holdfast(['verify', '--pool', pool, '--full']);
    assert.equal(verify.code, 0, `verify --full after the kills:\n${verify.stdout}${verify.stderr}\n${context()}`);
    for (const r of runs) assert.ok(!r.outcome.startsWith('exited'), `a backup failed on its own:\n${context()}`);
    const killed = runs.filter((r) => r.outcome.startsWith('killed')).length;
    assert.ok(killed >= ITERATIONS / 3, `only ${killed} of ${ITERATIONS} runs were killed: the kill window is too late\n${context()}`);
    const completed = runs.filter((r) => r.point).length;

    // One more normal backup on top of whatever the kills left.
    mutateTree(src, rng, { bigFile: BIG });
    const last = await run(null);
    assert.ok(last.run.point, `the backup after the kills failed: ${last.run.outcome}\n${context()}`);

    const points = await holdfastJson<PointJson[]>(['points', '--pool', pool, '--source', 'crash']);
    const byRun = new Map<Run, PointJson[]>();
    for (const p of points) {
      const pt = Date.parse(p.time);
      const owner = runs.filter((r) => r.start <= pt).at(-1);
      assert.ok(owner, `point ${p.id} at ${p.time} is older than every run\n${context()}`);
      byRun.set(owner, [...(byRun.get(owner) ?? []), p]);
    }
    for (const r of runs) {
      const mine = byRun.get(r) ?? [];
      assert.ok(mine.length <= 1, `run #${r.n} made ${mine.length} recovery points\n${context()}`);
      if (r.point) assert.deepEqual(mine.map((p) => p.id), [r.point], `run #${r.n} completed but its point is not listed\n${context()}`);
    }
    const committedKilled = runs.filter((r) => !r.point && byRun.has(r)).length;

    await mapLimit([...byRun], 2, async ([r, [p]]) => {
      if (!p) return;
      const to = join(s.dir, `restore-${p.id}`);
      const res = await holdfast(['restore', '--pool', pool, '--source', 'crash', '--point', p.id, '--to', to]);
      assert.equal(res.code, 0, `restore of point ${p.id} (run #${r.n}, ${r.outcome}): ${res.stderr}\n${context()}`);
      const diff = diffSnapshots(r.snap, snapshotTree(to, { skipRootMeta: true }));
      assert.deepEqual(diff.slice(0, 10), [], `point ${p.id} (run #${r.n}, ${r.outcome}) does not restore the tree of its run\n${context()}`);
      rmSync(to, { recursive: true, force: true });
    });

    for (const line of context().split('\n')) t.diagnostic(line);
    t.diagnostic(`seed ${seed}: ${completed} of ${runs.length} runs completed, ${killed} killed (${committedKilled} of them after the commit), ${points.length} points restored`);
  } finally {
    s.cleanup();
  }
});
