import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalWatcher } from './journal-watcher.js';
import { walkOrder } from './trackers/inotify-merge.js';

function withTree(fn: (root: string, w: JournalWatcher) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'holdfast-journal-'));
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  writeFileSync(join(root, 'a', 'b', 'f'), 'x');
  writeFileSync(join(root, 'g'), 'y');
  const w = new JournalWatcher(root, 'test');
  try {
    fn(root, w);
  } finally {
    w.close();
    rmSync(root, { recursive: true, force: true });
  }
}

test('records changed paths once each, and their directories when entries change', () => {
  withTree((root, w) => {
    for (let i = 0; i < 100; i++) appendFileSync(join(root, 'g'), 'more');
    writeFileSync(join(root, 'a', 'new'), 'n');
    chmodSync(join(root, 'a', 'b', 'f'), 0o600);
    rmSync(join(root, 'a', 'b', 'f'));
    const { previous } = w.rotate();
    assert.deepEqual([...previous.paths].sort(), ['a', 'a/b', 'a/b/f', 'a/new', 'g']);
    assert.equal(previous.broken, undefined);
    assert.equal(w.rotate().previous.paths.size, 0, 'the next generation starts empty');
  });
});

test('a new directory is a subtree, and is watched: later changes inside it are seen', () => {
  withTree((root, w) => {
    mkdirSync(join(root, 'n', 'deep'), { recursive: true });
    writeFileSync(join(root, 'n', 'deep', 'x'), '1');
    const first = w.rotate().previous;
    assert.ok(first.subtrees.has('n'));
    writeFileSync(join(root, 'n', 'deep', 'x'), '2');
    assert.ok(w.rotate().previous.paths.has('n/deep/x'));
  });
});

test('a moved directory reports its new path', () => {
  withTree((root, w) => {
    renameSync(join(root, 'a'), join(root, 'z'));
    const moved = w.rotate().previous;
    assert.ok(moved.subtrees.has('z'));
    assert.ok(moved.paths.has('a'));
    writeFileSync(join(root, 'z', 'b', 'f'), 'changed');
    assert.deepEqual([...w.rotate().previous.paths], ['z/b/f']);
  });
});

test('an abandoned generation is given back under its own name', () => {
  withTree((root, w) => {
    writeFileSync(join(root, 'g'), 'changed');
    const { previous } = w.rotate();
    writeFileSync(join(root, 'a', 'later'), 'l');
    w.giveBack(previous);
    const again = w.rotate().previous;
    assert.equal(again.id, previous.id);
    assert.ok(again.paths.has('g') && again.paths.has('a/later'));
  });
});

test('walk order: a directory before its children, "/" ending a name', () => {
  const paths = ['a-b', 'a/x', '.', 'a', 'b', 'a/x/y', 'a.c', 'A'];
  assert.deepEqual(paths.sort(walkOrder), ['.', 'A', 'a', 'a/x', 'a/x/y', 'a-b', 'a.c', 'b']);
});
