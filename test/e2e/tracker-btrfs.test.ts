/**
 * The btrfs tracker on a real btrfs (a loop device): random change rounds to a tree in a
 * subvolume (writes inside large files, appends, truncations, new, deleted and renamed files and
 * directories, hard links, modes); each sync reads only what btrfs says changed, and every
 * recovery point restores the tree as it was at its snapshot. Kills with SIGKILL lose nothing,
 * writes made during a sync are in the next point, pre/post-snapshot commands run in order.
 * Rounds: 6, or HOLDFAST_SOAK_ROUNDS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, holdfastJson, scratch } from './cli-harness.js';
import { prng, randInt, startHoldfast } from './tree-fixtures.js';
import { LoopBtrfs, MiB, diffFingerprints, fingerprint, mutate, seedTree } from './btrfs-fixtures.js';
import { requireTools } from './qemu-fixtures.js';

const ROUNDS = Number(process.env.HOLDFAST_SOAK_ROUNDS ?? 6);
const SNAPS = '.holdfast-snapshots';

interface BackupJson {
  point: string;
  logicalBytes: number;
  readBytes: number;
  newBytes: number;
  storedNewBytes: number;
  tracker: string;
  warnings: string[];
}

interface PointJson {
  id: string;
}

describe('btrfs tracker (loop device)', () => {
  const s = scratch('holdfast-btrfs-');
  const fs = new LoopBtrfs(s.dir);
  const pool = join(s.dir, 'pool');
  let vol = '';
  const seed = Number(process.env.HOLDFAST_SEED ?? Date.now() % 1_000_000);
  const rng = prng(seed);
  const expected = new Map<string, Map<string, string>>();
  let syncMs = 60_000;
  const tree = (): Map<string, string> => fingerprint(vol, [SNAPS]);
  const backup = (extra: string[] = []): Promise<BackupJson> => holdfastJson<BackupJson>(['backup', '--pool', pool, '--source', 'sub', '--kind', 'btrfs', ...extra, vol]);
  const restored = async (point: string): Promise<Map<string, string>> => {
    const to = join(s.dir, `restore-${point}`);
    const r = await holdfast(['restore', '--pool', pool, '--source', 'sub', '--point', point, '--to', to]);
    assert.equal(r.code, 0, r.stderr);
    const f = fingerprint(to);
    rmSync(to, { recursive: true, force: true });
    // The restore target's root takes the mode of the point's root.
    return f;
  };
  const checked = new Set<string>();
  const check = async (point: string, want: Map<string, string>, what: string): Promise<void> => {
    const diff = diffFingerprints(want, await restored(point));
    assert.deepEqual(diff.slice(0, 10), [], `${what}: point ${point} does not restore its tree (seed ${seed})`);
    checked.add(point);
  };
  const snapshots = (): string[] => readdirSync(join(vol, SNAPS));

  before(() => {
    requireTools('mkfs.btrfs', 'btrfs');
    fs.setup();
    vol = fs.subvolume('vol');
    seedTree(vol);
  });
  after(() => {
    try {
      fs.teardown();
    } finally {
      s.cleanup();
    }
  });

  test('the first sync reads everything from a snapshot and restores the tree', async (t) => {
    assert.equal((await holdfast(['pool', 'init', pool])).code, 0);
    const want = tree();
    const r = await backup();
    expected.set(r.point, want);
    assert.equal(r.tracker, 'full');
    assert.equal(r.readBytes, r.logicalBytes);
    await check(r.point, want, 'first sync');
    assert.equal(snapshots().length, 1);
    t.diagnostic(`seed ${seed}; first sync read ${r.readBytes} bytes`);
  });

  test(`${ROUNDS} random change rounds: only what changed is read, every point restores`, async (t) => {
    for (let round = 0; round < ROUNDS; round++) {
      const bound = mutate(vol, join(vol, SNAPS), rng, randInt(rng, 1, 12));
      const want = tree();
      const started = Date.now();
      const r = await backup();
      syncMs = Math.min(syncMs, Date.now() - started);
      expected.set(r.point, want);
      t.diagnostic(`round ${round}: bound ${bound}, readBytes ${r.readBytes}, newBytes ${r.newBytes}, stored ${r.storedNewBytes}, logical ${r.logicalBytes}`);
      assert.equal(r.tracker, 'btrfs', r.warnings.join('; '));
      assert.ok(r.readBytes <= bound, `round ${round} (seed ${seed}) read ${r.readBytes} bytes; the changes allow ${bound}`);
      await check(r.point, want, `round ${round}`);
      assert.equal(snapshots().length, 1, `snapshots left: ${snapshots().join(', ')}`);
    }
    const still = tree();
    const none = await backup();
    expected.set(none.point, still);
    assert.equal(none.readBytes, 0, 'nothing changed, yet data was read');
  });

  // btrfs send clones the parts of an extent a write split back onto the file; they are no change.
  test('a 4 KiB write into a large extent reads the chunks around it, not the extent', async (t) => {
    // Two 8 MiB data extents in a 20 MiB file, as in the layout btrfs answers with those clones.
    const f = join(vol, 'extents.bin');
    const fd = openSync(f, 'w');
    writeSync(fd, randomBytes(8 * MiB), 0, 8 * MiB, 1 * MiB);
    writeSync(fd, randomBytes(8 * MiB), 0, 8 * MiB, 11 * MiB);
    closeSync(fd);
    truncateSync(f, 20 * MiB);
    const first = await backup();
    expected.set(first.point, tree());
    const fw = openSync(f, 'r+');
    writeSync(fw, randomBytes(4096), 0, 4096, 5 * MiB + 5000);
    closeSync(fw);
    const want = tree();
    const r = await backup();
    expected.set(r.point, want);
    t.diagnostic(`read ${r.readBytes} bytes for a 4 KiB write`);
    assert.equal(r.tracker, 'btrfs', r.warnings.join('; '));
    // The chunk before, the touched one and the next cut: at most three 1 MiB chunks.
    assert.ok(r.readBytes <= 3 * MiB, `read ${r.readBytes} bytes of an 8 MiB extent for a 4 KiB write`);
    await check(r.point, want, 'a write into a large extent');
  });

  test('files written during a sync: the point is one moment, the next point has them all', async (t) => {
    // New files appear whole (written aside, then renamed) in a known order: a snapshot holds a prefix.
    const dir = join(vol, 'during');
    mkdirSync(dir, { recursive: true });
    const trees: Array<Map<string, string>> = [tree()];
    const run = startHoldfast(['backup', '--pool', pool, '--source', 'sub', '--kind', 'btrfs', '--json', vol]);
    let finished = false;
    void run.done.then(() => (finished = true));
    let n = 0;
    while (!finished || n < 3) {
      writeFileSync(join(dir, `.tmp${n}`), randomBytes(randInt(rng, 1, 64) * 1024));
      renameSync(join(dir, `.tmp${n}`), join(dir, `f${String(n).padStart(4, '0')}`));
      trees.push(tree());
      n++;
      await new Promise((r) => setTimeout(r, 5));
    }
    const res = await run.done;
    assert.equal(res.code, 0, res.stderr);
    const during = JSON.parse(res.stdout) as BackupJson;
    const got = await restored(during.point);
    const k = trees.findIndex((w) => diffFingerprints(w, got).length === 0);
    assert.ok(k >= 0, `the point taken during ${n} writes is no moment of the tree (seed ${seed})`);
    expected.set(during.point, trees[k] as Map<string, string>);
    t.diagnostic(`point during writes holds ${k} of ${n} new files`);
    const want = tree();
    const next = await backup();
    expected.set(next.point, want);
    assert.equal(next.tracker, 'btrfs');
    await check(next.point, want, 'the sync after the writes');
  });

  test('syncs killed with SIGKILL at random moments lose no change; stray snapshots go at the next commit', async (t) => {
    for (let i = 0; i < 5; i++) {
      mutate(vol, join(vol, SNAPS), rng, randInt(rng, 1, 6));
      const want = tree();
      const run = startHoldfast(['backup', '--pool', pool, '--source', 'sub', '--kind', 'btrfs', '--json', vol]);
      const delay = randInt(rng, 30, Math.round(syncMs * 1.1));
      const timer = setTimeout(() => run.child.kill('SIGKILL'), delay);
      const res = await run.done;
      clearTimeout(timer);
      const points = await holdfastJson<PointJson[]>(['points', '--pool', pool, '--source', 'sub']);
      for (const p of points) if (!expected.has(p.id)) expected.set(p.id, want);
      t.diagnostic(`kill ${i} after ${delay} ms: ${res.signal ?? `exit ${res.code}`}, snapshots now ${snapshots().length}`);
    }
    mutate(vol, join(vol, SNAPS), rng, 4);
    const want = tree();
    const r = await backup();
    expected.set(r.point, want);
    t.diagnostic(`after the kills: tracker ${r.tracker}, readBytes ${r.readBytes}; ${r.warnings.join('; ')}`);
    if (r.tracker !== 'btrfs') assert.match(r.warnings.join('\n'), /reading everything/);
    await check(r.point, want, 'after the kills');
    assert.equal(snapshots().length, 1, `snapshots left: ${snapshots().join(', ')}`);
  });

  test('lost tracker state: the next sync reads everything and says so; tracking resumes', async () => {
    unlinkSync(join(pool, 'agent-state', 'sub.btrfs.json'));
    mutate(vol, join(vol, SNAPS), rng, 3);
    const want = tree();
    const r = await backup();
    expected.set(r.point, want);
    assert.equal(r.tracker, 'full');
    assert.match(r.warnings.join('\n'), /no change tracking state leads to recovery point/);
    await check(r.point, want, 'after the state was lost');
    mutate(vol, join(vol, SNAPS), rng, 3);
    const want2 = tree();
    const r2 = await backup();
    expected.set(r2.point, want2);
    assert.equal(r2.tracker, 'btrfs');
  });

  test('pre- and post-snapshot commands run around the snapshot, in order', async () => {
    const pre = join(vol, 'pre-marker');
    const post = join(vol, 'post-marker');
    const r = await backup(['--pre-snapshot', `echo pre > '${pre}'`, '--post-snapshot', `echo post > '${post}'`]);
    const got = await restored(r.point);
    assert.ok(got.has('pre-marker'), 'the pre-snapshot command did not run before the snapshot');
    assert.ok(!got.has('post-marker'), 'the post-snapshot command ran before the snapshot');
    assert.ok(existsSync(post));
    expected.set(r.point, got);
    const failed = await holdfast(['backup', '--pool', pool, '--source', 'sub', '--kind', 'btrfs', '--pre-snapshot', 'exit 3', '--post-snapshot', `echo again > '${post}'`, vol]);
    assert.equal(failed.code, 6, failed.stderr);
    assert.match(failed.stderr, /pre-snapshot command failed/);
    assert.equal(snapshots().length, 1);
    const slow = await holdfast(['backup', '--pool', pool, '--source', 'sub', '--kind', 'btrfs', '--pre-snapshot', 'sleep 30', '--quiesce-timeout', '1', vol]);
    assert.equal(slow.code, 6);
    assert.match(slow.stderr, /timed out after 1000 ms/);
  });

  test('a path that is not a subvolume is refused', async () => {
    const plain = join(fs.mount, 'plain-dir');
    mkdirSync(plain, { recursive: true });
    const r = await holdfast(['backup', '--pool', pool, '--source', 'plain', '--kind', 'btrfs', plain]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not a btrfs subvolume/);
  });

  test('every recovery point restores the tree of its snapshot (those not checked yet)', async () => {
    const points = await holdfastJson<PointJson[]>(['points', '--pool', pool, '--source', 'sub']);
    for (const p of points) {
      const want = expected.get(p.id);
      assert.ok(want, `point ${p.id} was not expected`);
      if (!checked.has(p.id)) await check(p.id, want, 'final check');
    }
    assert.ok(points.length >= ROUNDS + 5);
  });
});
