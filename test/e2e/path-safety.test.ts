/**
 * End to end: no recovery point, however its manifest was crafted, can make a restore write
 * outside its target. Points are built by hand (raw manifest entries with '..', absolute paths,
 * missing or symlinked parents, hard links that point out, duplicate names), and each restore
 * must exit non-zero naming the unsafe path while nothing appears or changes outside the target.
 * With --overwrite, symlinks already in the target are replaced, never followed.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, linkSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, scratch } from './cli-harness.js';
import { craftPoint, listTree, meta, ref } from './pool-fixtures.js';
import { Pool } from '../../src/pool/pool.js';

const CONTENT = Buffer.from('payload that must stay inside the target\n');
const root = { type: 'dir', ...meta('.', 0o755) };
const file = (path: string): object => ({ type: 'file', ...meta(path), size: CONTENT.length, chunks: [ref(CONTENT)] });
const dir = (path: string, mode = 0o755): object => ({ type: 'dir', ...meta(path, mode) });
const symlink = (path: string, target: string): object => ({ type: 'symlink', ...meta(path, 0o777), target });
const hardlink = (path: string, target: string): object => ({ type: 'hardlink', ...meta(path), size: CONTENT.length, chunks: [ref(CONTENT)], target });

interface Case {
  source: string;
  what: string;
  entries: (outside: string, victim: string) => object[];
  /** text the error message must contain */
  names: string | ((outside: string, victim: string) => string);
  overwrite?: boolean;
}

const cases: Case[] = [
  { source: 'dotdot', what: "a path starting with '..'", entries: () => [root, file('../escape')], names: '../escape' },
  { source: 'dotdot-deep', what: "a path with '..' that climbs two levels", entries: () => [root, file('../../escape')], names: '../../escape' },
  { source: 'absolute', what: 'an absolute path', entries: (outside) => [root, file(join(outside, 'abs'))], names: (outside) => join(outside, 'abs') },
  { source: 'inner-dotdot', what: "a path with '..' in the middle", entries: () => [root, dir('a'), file('a/../../x')], names: 'a/../../x' },
  { source: 'dot', what: "a path starting with './'", entries: () => [root, file('./x')], names: './x' },
  { source: 'trailing-slash', what: 'a path ending in a slash', entries: () => [root, dir('a/')], names: 'a/' },
  { source: 'no-parent', what: 'a file whose parent has no directory entry', entries: () => [root, file('nodir/evil')], names: 'nodir/evil' },
  { source: 'late-parent', what: 'a file before its parent directory entry', entries: () => [root, file('late/evil'), dir('late')], names: 'late/evil' },
  {
    source: 'symlink-parent',
    what: "a symlink 'link' to the outside directory, then 'link/evil'",
    entries: (outside) => [root, symlink('link', outside), file('link/evil')],
    names: 'link/evil',
  },
  {
    source: 'symlink-then-dir',
    what: "a symlink 'link' to the outside directory, then a directory entry 'link', then 'link/evil'",
    entries: (outside) => [root, symlink('link', outside), dir('link'), file('link/evil')],
    names: 'link',
  },
  { source: 'hardlink-dotdot', what: "a hard link whose target is '../x'", entries: () => [root, file('f'), hardlink('h', '../x')], names: '../x' },
  {
    source: 'hardlink-absolute',
    what: 'a hard link whose target is an absolute path outside',
    entries: (_outside, victim) => [root, hardlink('h', victim)],
    names: (_outside, victim) => victim,
  },
  {
    source: 'dir-then-symlink',
    what: "with --overwrite, a directory 'd', then a symlink 'd' to the outside directory, then 'd/evil'",
    // The padding files fill the restore's window of concurrent writes, so the symlink exists
    // before 'd/evil' is opened: the outcome does not depend on timing.
    entries: (outside) => [root, dir('d'), symlink('d', outside), ...Array.from({ length: 20 }, (_, i) => file(`pad-${i}`)), file('d/evil')],
    names: 'd',
    overwrite: true,
  },
  {
    source: 'dir-then-symlink-mode',
    what: "with --overwrite, a directory 'd' of mode 0777, then a symlink 'd' to the outside directory",
    entries: (outside) => [root, dir('d', 0o777), symlink('d', outside)],
    names: 'd',
    overwrite: true,
  },
];

describe('restore never writes outside its target', () => {
  const s = scratch('holdfast-paths-');
  const pool = join(s.dir, 'pool');
  const outside = join(s.dir, 'outside'); // a sentinel: must stay empty, mode 0755
  const victimDir = join(s.dir, 'victim');
  const victim = join(victimDir, 'secret'); // must keep its bytes, mode and link count
  const work = join(s.dir, 'work');
  const target = join(work, 'target');

  const expectNothingOutside = (): void => {
    assert.deepEqual(readdirSync(outside), [], 'the outside directory stays empty');
    assert.equal(lstatSync(outside).mode & 0o7777, 0o755, 'the outside directory keeps its mode');
    assert.equal(readFileSync(victim, 'utf8'), 'secret\n');
    assert.equal(lstatSync(victim).nlink, 1, 'nothing links to the outside file');
    assert.equal(lstatSync(victim).mode & 0o7777, 0o600);
    // Everything in the scratch directory besides the pool and the target was there before.
    assert.deepEqual(listTree(s.dir, [pool, target]), ['outside', 'victim', 'victim/secret', 'work']);
    for (const name of ['escape', 'abs', 'evil', 'x']) {
      assert.equal(existsSync(join(s.dir, name)), false, name);
      assert.equal(existsSync(join(work, name)), false, name);
    }
  };

  before(async () => {
    mkdirSync(outside, { mode: 0o755 });
    mkdirSync(victimDir);
    writeFileSync(victim, 'secret\n', { mode: 0o600 });
    mkdirSync(work);
    await Pool.init(pool);
    const p = await Pool.open(pool);
    try {
      for (const c of cases) await craftPoint(p, c.source, c.entries(outside, victim), [CONTENT]);
      await craftPoint(p, 'real-dir', [root, dir('d'), file('d/f'), file('f2'), file('h')], [CONTENT]);
    } finally {
      await p.close();
    }
    expectNothingOutside();
  });

  afterEach(() => {
    rmSync(target, { recursive: true, force: true });
    // Undo any escape, so one failure does not fail the cases after it.
    for (const name of readdirSync(outside)) rmSync(join(outside, name), { recursive: true, force: true });
    chmodSync(outside, 0o755);
    rmSync(victim, { force: true });
    writeFileSync(victim, 'secret\n', { mode: 0o600 });
  });

  after(() => s.cleanup());

  for (const c of cases) {
    it(`refuses ${c.what}`, async () => {
      if (c.overwrite) mkdirSync(target);
      const r = await holdfast(['restore', '--pool', pool, '--source', c.source, '--to', target, ...(c.overwrite ? ['--overwrite'] : [])]);
      expectNothingOutside();
      assert.notEqual(r.code, 0, `restore succeeded:\n${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /unsafe|refus|would leave|not a directory/i);
      assert.doesNotMatch(r.stderr, /internal error/);
      const names = typeof c.names === 'string' ? c.names : c.names(outside, victim);
      assert.ok(r.stderr.includes(names), `the message names ${names}:\n${r.stderr}`);
    });
  }

  it("refuses a --path that climbs out with '..'", async () => {
    const r = await holdfast(['restore', '--pool', pool, '--source', 'real-dir', '--path', '../d', '--to', target]);
    assert.notEqual(r.code, 0);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--path '..\/d' is not a path inside the recovery point/);
    expectNothingOutside();
  });

  it('with --overwrite, replaces symlinks and hard links in the target instead of writing through them', async () => {
    mkdirSync(target);
    symlinkSync(outside, join(target, 'd')); // the point has a real directory 'd' with 'd/f'
    symlinkSync(victim, join(target, 'f2')); // the point has a file 'f2'
    linkSync(victim, join(target, 'h')); // the point has a file 'h'
    const r = await holdfast(['restore', '--pool', pool, '--source', 'real-dir', '--to', target, '--overwrite']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(lstatSync(join(target, 'd')).isDirectory(), 'the symlink d is now a directory');
    assert.deepEqual(readFileSync(join(target, 'd/f')), CONTENT);
    assert.ok(lstatSync(join(target, 'f2')).isFile());
    assert.deepEqual(readFileSync(join(target, 'f2')), CONTENT);
    assert.deepEqual(readFileSync(join(target, 'h')), CONTENT);
    assert.notEqual(lstatSync(join(target, 'h')).ino, lstatSync(victim).ino);
    expectNothingOutside();
  });

  it('a symlink to the outside is restored as a symlink, never followed', async () => {
    const r = await holdfast(['restore', '--pool', pool, '--source', 'symlink-parent', '--to', target]);
    assert.notEqual(r.code, 0);
    assert.equal(readlinkSync(join(target, 'link')), outside);
    expectNothingOutside();
  });
});
