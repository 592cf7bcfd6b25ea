/** The walk's order, and its replay from recorded listings: the same items, first to last or cut short. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setXattr } from '../native/index.js';
import { CodecPool } from '../workers/codec-pool.js';
import { replayWalk, walkTree, type WalkItem, type WalkRecord } from './tree-walker.js';

const FIELDS = ['mode', 'uid', 'gid', 'size', 'mtimeNs', 'ctimeNs', 'ino', 'dev', 'nlink', 'rdev'] as const;
const plain = (it: WalkItem): unknown => ({ rel: it.rel, abs: it.abs, xattrs: it.xattrs, st: FIELDS.map((k) => it.st[k]) });

test('a replay of a recorded walk yields the walk again, whole or its first items only', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hf-walk-'));
  const codec = new CodecPool();
  try {
    for (const d of ['b', 'a', join('a', 'z'), join('a', 'y'), 'c']) mkdirSync(join(root, d), { recursive: true });
    for (const f of ['a/z/1', 'a/z/0', 'a/y/x', 'a/f', 'b/g', 'top', 'skip-me']) writeFileSync(join(root, f), f);
    symlinkSync('a/f', join(root, 'link'));
    setXattr(join(root, 'a', 'f'), 'user.k', Buffer.from('v'));
    const warnings: string[] = [];
    const record: WalkRecord = new Map();
    const walked: WalkItem[] = [];
    for await (const it of walkTree(root, { exclude: new Set([join(root, 'skip-me')]), warnings, codec, record })) walked.push(it);
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      walked.map((it) => it.rel),
      ['.', 'a', 'a/f', 'a/y', 'a/y/x', 'a/z', 'a/z/0', 'a/z/1', 'b', 'b/g', 'c', 'link', 'top'].map((p) => (p === '.' ? walked[0]?.rel : p)),
      'a directory before its children, names sorted, the excluded entry left out',
    );
    assert.deepEqual(walked.find((it) => it.rel === 'a/f')?.xattrs, { 'user.k': Buffer.from('v').toString('base64') });
    const first = walked[0] as WalkItem;
    for (const count of [walked.length, 1, 4, 7, walked.length - 1]) {
      assert.deepEqual([...replayWalk(first, record, count)].map(plain), walked.slice(0, count).map(plain), `replay of ${count}`);
    }
    // A walk stopped part-way (the full tracker's hold filled): its replay, the item in hand, then the rest of the walk.
    for (const k of [1, 5, 9]) {
      const rec: WalkRecord = new Map();
      const walk = walkTree(root, { exclude: new Set([join(root, 'skip-me')]), warnings: [], codec, record: rec });
      let taken = 0;
      let head: WalkItem | undefined;
      let n = await walk.next();
      for (; !n.done && taken < k; n = await walk.next()) {
        head ??= n.value;
        taken++;
      }
      const again = [...replayWalk(head as WalkItem, rec, taken)];
      if (!n.done) again.push(n.value);
      for (let m = await walk.next(); !m.done; m = await walk.next()) again.push(m.value);
      assert.deepEqual(again.map(plain), walked.map(plain), `stopped after ${k}`);
    }
  } finally {
    await codec.close();
    rmSync(root, { recursive: true, force: true });
  }
});
