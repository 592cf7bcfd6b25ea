/**
 * Several paths restored together (`restore --path A --path B`, the console's "restore chosen"):
 * one restore writes each chosen entry into the target under its own name, checks the target
 * once for all of them, leaves entries inside another chosen entry to it, and refuses two
 * entries of the same name.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, holdfastJson, scratch } from './cli-harness.js';

describe('restore of several paths', () => {
  const s = scratch('holdfast-restore-paths-');
  const pool = join(s.dir, 'pool');
  const src = join(s.dir, 'src');
  const restore = (to: string, paths: string[], extra: string[] = []): ReturnType<typeof holdfast> =>
    holdfast(['restore', '--pool', pool, '--source', 'home', ...paths.flatMap((p) => ['--path', p]), '--to', to, ...extra]);

  before(async () => {
    for (const d of ['docs/old', 'etc', 'var/log']) mkdirSync(join(src, d), { recursive: true });
    writeFileSync(join(src, 'docs/a.txt'), 'a\n');
    writeFileSync(join(src, 'docs/old/b.txt'), 'b\n');
    writeFileSync(join(src, 'etc/app.conf'), 'setting = 1\n');
    writeFileSync(join(src, 'etc/other.conf'), 'other\n');
    writeFileSync(join(src, 'var/log/a.txt'), 'log a\n');
    writeFileSync(join(src, 'zz.txt'), 'last\n');
    assert.equal((await holdfast(['pool', 'init', pool])).code, 0);
    await holdfastJson(['backup', '--pool', pool, '--source', 'home', src]);
  });
  after(() => s.cleanup());

  it('restores each chosen entry under its own name, in one pass, whatever order they were given in', async () => {
    const to = join(s.dir, 'several');
    const r = await restore(to, ['zz.txt', 'etc/app.conf', 'docs', 'docs/old/b.txt'], ['--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(to).sort(), ['app.conf', 'docs', 'zz.txt']);
    assert.equal(readFileSync(join(to, 'app.conf'), 'utf8'), 'setting = 1\n');
    assert.equal(readFileSync(join(to, 'docs/old/b.txt'), 'utf8'), 'b\n', 'an entry inside a chosen directory comes with it');
    assert.equal(readFileSync(join(to, 'zz.txt'), 'utf8'), 'last\n');
    assert.equal((JSON.parse(r.stdout) as { entries: number }).entries, 6);
  });

  it('checks the target once: a non-empty target is refused before anything is written, and accepted with --overwrite', async () => {
    const to = join(s.dir, 'busy');
    mkdirSync(to);
    writeFileSync(join(to, 'mine.txt'), 'not from the point\n');
    const r = await restore(to, ['etc/app.conf', 'zz.txt']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not empty/);
    assert.deepEqual(readdirSync(to), ['mine.txt']);
    assert.equal((await restore(to, ['etc/app.conf', 'zz.txt'], ['--overwrite'])).code, 0);
    assert.deepEqual(readdirSync(to).sort(), ['app.conf', 'mine.txt', 'zz.txt']);
  });

  it('refuses two entries of one name, and names a chosen path that is not in the point', async () => {
    const same = await restore(join(s.dir, 'same'), ['docs/a.txt', 'var/log/a.txt']);
    assert.equal(same.code, 2, same.stderr);
    assert.match(same.stderr, /'docs\/a.txt' and 'var\/log\/a.txt' have the same name/);
    const to = join(s.dir, 'missing');
    const gone = await restore(to, ['etc/app.conf', 'etc/nope.conf', 'zz.txt']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /no path 'etc\/nope.conf'/);
    assert.deepEqual(readdirSync(to).sort(), ['app.conf', 'zz.txt'], 'the paths that are there are restored');
  });
});
