/**
 * Bad input end to end: every mistake a user can make at the command line gets a clear error
 * that names the object, a non-zero exit, and leaves the pool and the restore target untouched.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, holdfastJson, scratch, snapshotTree, diffSnapshots, type CliResult } from './cli-harness.js';
import { holdfastAs, poolState, prng, buildTree, mapLimit } from './tree-fixtures.js';

const LANES = 3;

function assertFails(r: CliResult, names: string[], what: string): void {
  assert.notEqual(r.code, 0, `${what}: expected a non-zero exit, got 0\nstdout: ${r.stdout}`);
  assert.notEqual(r.code, 70, `${what}: exit 70 is an internal error (a bug):\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /internal error/, `${what}: reported as a bug:\n${r.stderr}`);
  for (const n of names) assert.ok(r.stderr.includes(n), `${what}: stderr should name ${JSON.stringify(n)}, got:\n${r.stderr}`);
}

describe('bad input', () => {
  const s = scratch('holdfast-bad-input-');
  const pool = join(s.dir, 'pool');
  const src = join(s.dir, 'src');
  let pointId = '';
  let pointTime = '';

  before(async () => {
    buildTree(src, prng(7), { files: 40 });
    mkdirSync(join(src, 'docs'));
    writeFileSync(join(src, 'docs', 'readme.txt'), 'the source version\n');
    writeFileSync(join(src, 'top.txt'), 'top\n');
    assert.equal((await holdfast(['pool', 'init', pool])).code, 0);
    const r = await holdfastJson<{ point: string; time: string }>(['backup', '--pool', pool, '--source', 'home', src]);
    pointId = r.point;
    pointTime = r.time;
  });
  after(() => s.cleanup());

  test('backup of a nonexistent path names the path and writes nothing', async () => {
    const state = await poolState(pool);
    const missing = join(s.dir, 'no-such-dir');
    const cases = [
      { args: ['--source', 'home', missing], what: 'backup of a missing path into an existing source' },
      { args: ['--source', 'brand-new', missing], what: 'backup of a missing path into a new source' },
      { args: ['--source', 'new-disk', '--kind', 'image', missing], what: 'image backup of a missing file' },
      { args: ['--source', 'home', join(src, 'docs', 'gone', 'deeper')], what: 'backup of a missing path under an existing dir' },
    ];
    await mapLimit(cases, LANES, async (c) => {
      const r = await holdfast(['backup', '--pool', pool, ...c.args]);
      assertFails(r, [c.args[c.args.length - 1] as string], c.what);
    });
    assert.deepEqual(await poolState(pool), state, 'the pool changed');
    for (const name of ['brand-new', 'new-disk']) {
      const r = await holdfast(['points', '--pool', pool, '--source', name, '--json']);
      assert.notEqual(r.code, 0, `a failed first backup left source '${name}' behind`);
    }
  });

  test('backup of an unreadable path (as user nobody) names the path and writes nothing', async () => {
    // Root bypasses permissions, so the CLI runs as nobody on a pool nobody owns.
    const t = scratch('holdfast-bad-input-nobody-');
    try {
      chmodSync(t.dir, 0o755);
      const npool = join(t.dir, 'pool');
      assert.equal((await holdfast(['pool', 'init', npool])).code, 0);
      const chownTree = (p: string): void => {
        chownSync(p, 65534, 65534);
        for (const n of readdirSync(p, { withFileTypes: true })) {
          if (n.isDirectory()) chownTree(join(p, n.name));
          else chownSync(join(p, n.name), 65534, 65534);
        }
      };
      chownTree(npool);
      const secret = join(t.dir, 'secret');
      mkdirSync(secret, { mode: 0o700 });
      chmodSync(secret, 0o700);
      writeFileSync(join(secret, 'payroll.txt'), 'salaries\n');
      const image = join(t.dir, 'disk.img');
      writeFileSync(image, Buffer.alloc(64 * 1024, 1), { mode: 0o600 });
      chmodSync(image, 0o600);
      const readable = join(t.dir, 'open');
      mkdirSync(readable, { mode: 0o755 });
      writeFileSync(join(readable, 'x.txt'), 'x\n', { mode: 0o644 });

      // The setup is right: nobody can use the pool and reach the CLI.
      const ok = await holdfastAs('nobody', ['backup', '--pool', npool, '--source', 'open', readable, '--json']);
      assert.equal(ok.code, 0, `nobody could not back up a readable dir: ${ok.stderr}`);
      const state = await poolState(npool, 'nobody');

      const cases = [
        { args: ['--source', 'secret', secret], what: 'backup of an unreadable directory' },
        { args: ['--source', 'disk', '--kind', 'image', image], what: 'backup of an unreadable image' },
        { args: ['--source', 'open', secret], what: 'backup of an unreadable directory into an existing source' },
      ];
      await mapLimit(cases, LANES, async (c) => {
        const r = await holdfastAs('nobody', ['backup', '--pool', npool, ...c.args]);
        assertFails(r, [c.args[c.args.length - 1] as string], c.what);
      });
      assert.deepEqual(await poolState(npool, 'nobody'), state, 'the pool changed');
    } finally {
      t.cleanup();
    }
  });

  test('every command on an uninitialized pool (empty or missing dir) fails naming the pool and creates nothing', async () => {
    const empty = join(s.dir, 'empty-pool');
    mkdirSync(empty);
    const missing = join(s.dir, 'missing-pool');
    const target = join(s.dir, 'uninit-target');
    for (const p of [empty, missing]) {
      const cmds = [
        ['backup', '--pool', p, '--source', 'home', src],
        ['points', '--pool', p],
        ['points', '--pool', p, '--json'],
        ['restore', '--pool', p, '--source', 'home', '--to', target],
        ['verify', '--pool', p],
        ['verify', '--pool', p, '--full', '--json'],
        ['pool', 'stats', '--pool', p, '--json'],
      ];
      await mapLimit(cmds, LANES, async (args) => {
        const r = await holdfast(args);
        assertFails(r, [p], args.join(' '));
      });
      if (p === empty) assert.deepEqual(readdirSync(empty), [], 'a command wrote into the empty dir');
      else assert.ok(!existsSync(missing), 'a command created the missing pool dir');
      assert.ok(!existsSync(target), 'a command created the restore target');
    }
  });

  test('pool init on an existing pool fails naming it and leaves the pool as it was', async () => {
    const state = await poolState(pool);
    const config = readFileSync(join(pool, 'config.json'), 'utf8');
    const r = await holdfast(['pool', 'init', pool]);
    assertFails(r, [pool], 'pool init on an existing pool');
    assert.equal(readFileSync(join(pool, 'config.json'), 'utf8'), config, 'config.json was rewritten');
    assert.deepEqual(await poolState(pool), state, 'the pool changed');
    // A pool that still restores: the existing recovery point is intact.
    const t = join(s.dir, 'after-init-restore');
    await holdfastJson(['restore', '--pool', pool, '--source', 'home', '--to', t]);
    assert.deepEqual(diffSnapshots(snapshotTree(src, { skipRootMeta: true }), snapshotTree(t, { skipRootMeta: true })), []);
  });

  test('unknown source, unknown point id and --at before the first point are named; nothing restored', async () => {
    const state = await poolState(pool);
    const target = join(s.dir, 'unknown-target');
    const cases: Array<{ args: string[]; names: string[] }> = [
      { args: ['restore', '--pool', pool, '--source', 'nosuch', '--to', target], names: ['nosuch'] },
      { args: ['restore', '--pool', pool, '--source', 'nosuch', '--point', pointId, '--to', target], names: ['nosuch'] },
      { args: ['points', '--pool', pool, '--source', 'nosuch'], names: ['nosuch'] },
      { args: ['points', '--pool', pool, '--source', 'nosuch', '--json'], names: ['nosuch'] },
      { args: ['restore', '--pool', pool, '--source', 'home', '--point', 'ffffffffffff', '--to', target], names: ['ffffffffffff', 'home'] },
      { args: ['restore', '--pool', pool, '--source', 'home', '--point', 'zz', '--to', target], names: ['zz'] },
      { args: ['restore', '--pool', pool, '--source', 'home', '--at', '2001-02-03T04:05:06Z', '--to', target], names: ['home', '2001-02-03T04:05:06'] },
      {
        args: ['restore', '--pool', pool, '--source', 'home', '--at', new Date(Date.parse(pointTime) - 1).toISOString(), '--to', target],
        names: ['home'],
      },
    ];
    await mapLimit(cases, LANES, async (c) => {
      const r = await holdfast(c.args);
      assertFails(r, c.names, c.args.join(' '));
    });
    assert.ok(!existsSync(target), 'a failed restore created the restore target');
    // The point itself restores by id and at its own time: the errors above are not false alarms.
    await mapLimit([['--point', pointId], ['--point', pointId.slice(0, 6)], ['--at', pointTime]], LANES, async (sel, i) => {
      const t = join(s.dir, `known-${i}`);
      const r = await holdfastJson<{ point: string }>(['restore', '--pool', pool, '--source', 'home', ...sel, '--to', t]);
      assert.equal(r.point, pointId);
    });
    assert.deepEqual(await poolState(pool), state, 'the pool changed');
  });

  test('restore into a non-empty target: refused without --overwrite, exact with it', async () => {
    const target = join(s.dir, 'busy-target');
    const outside = join(s.dir, 'outside.txt');
    writeFileSync(outside, 'must never be written through a link\n');
    mkdirSync(join(target, 'top.txt'), { recursive: true }); // a dir where the source has a file
    writeFileSync(join(target, 'top.txt', 'inner'), 'in the way\n');
    writeFileSync(join(target, 'docs'), 'a file where the source has a dir\n');
    const files = readdirSync(join(src, 'a')).filter((n) => n.endsWith('.dat'));
    assert.ok(files.length >= 2, 'fixture needs two files in a/');
    mkdirSync(join(target, 'a'));
    writeFileSync(join(target, 'a', files[0] as string), 'stale content of the same name\n');
    symlinkSync(outside, join(target, 'a', files[1] as string)); // a symlink out of the target
    if (files[2]) linkSync(outside, join(target, 'a', files[2])); // a hard link to a file outside
    const before = snapshotTree(target);
    const outsideBefore = readFileSync(outside);

    const r = await holdfast(['restore', '--pool', pool, '--source', 'home', '--to', target]);
    assertFails(r, [target], 'restore into a non-empty target');
    assert.deepEqual(diffSnapshots(before, snapshotTree(target)), [], 'the target changed without --overwrite');

    const ok = await holdfast(['restore', '--pool', pool, '--source', 'home', '--to', target, '--overwrite']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(diffSnapshots(snapshotTree(src, { skipRootMeta: true }), snapshotTree(target, { skipRootMeta: true })), []);
    assert.deepEqual(readFileSync(outside), outsideBefore, 'restore wrote through a link to a file outside the target');
  });

  test('--path that is not in the recovery point names the path and restores nothing', async () => {
    const state = await poolState(pool);
    const target = join(s.dir, 'path-target');
    const emptyTarget = join(s.dir, 'path-target-empty');
    mkdirSync(emptyTarget);
    const cases = [
      { p: 'no/such/file', to: target },
      { p: 'docs/missing.txt', to: target },
      { p: 'doc', to: target }, // a prefix of 'docs' is not 'docs'
      { p: 'top.txt/child', to: target },
      { p: 'nowhere', to: emptyTarget },
    ];
    await mapLimit(cases, LANES, async (c) => {
      const r = await holdfast(['restore', '--pool', pool, '--source', 'home', '--path', c.p, '--to', c.to]);
      assertFails(r, [c.p], `restore --path ${c.p}`);
    });
    assert.ok(!existsSync(target), 'a restore of a missing --path created the target');
    assert.deepEqual(readdirSync(emptyTarget), [], 'a restore of a missing --path wrote into the target');
    // A path that is there restores just that path: the refusals above are not blanket failures.
    const good = join(s.dir, 'path-good');
    await holdfastJson(['restore', '--pool', pool, '--source', 'home', '--path', 'docs/readme.txt', '--to', good]);
    assert.deepEqual(readdirSync(good), ['readme.txt']);
    assert.equal(readFileSync(join(good, 'readme.txt'), 'utf8'), 'the source version\n');
    assert.deepEqual(await poolState(pool), state, 'the pool changed');
  });

  test('bad arguments exit 2 with a message naming the argument', async () => {
    const state = await poolState(pool);
    const target = join(s.dir, 'args-target');
    const cases: Array<{ args: string[]; names: string[] }> = [
      { args: ['backup', '--pool', pool, '--source', 'home', '--kind', 'foo', src], names: ['foo'] },
      { args: ['backup', '--pool', pool, '--source', 'bad name', src], names: ['bad name'] },
      { args: ['backup', '--pool', pool, '--source', '../escape', src], names: ['../escape'] },
      { args: ['backup', '--pool', pool, '--source', '', src], names: ["''"] },
      { args: ['restore', '--pool', pool, '--source', 'home', '--at', 'notatime', '--to', target], names: ['notatime'] },
      { args: ['restore', '--pool', pool, '--source', 'home', '--point', pointId, '--at', pointTime, '--to', target], names: ['--point', '--at'] },
      { args: ['backup', '--pool', pool, src], names: ['--source'] },
      { args: ['restore', '--pool', pool, '--source', 'home'], names: ['--to'] },
      { args: ['frobnicate', '--pool', pool], names: ['frobnicate'] },
    ];
    await mapLimit(cases, LANES, async (c) => {
      const r = await holdfast(c.args);
      assertFails(r, c.names, JSON.stringify(c.args));
      assert.equal(r.code, 2, `${JSON.stringify(c.args)}: exit ${r.code}, want 2\n${r.stderr}`);
    });
    assert.ok(!existsSync(target), 'a command with bad arguments created the restore target');
    assert.deepEqual(await poolState(pool), state, 'the pool changed');
  });
});
